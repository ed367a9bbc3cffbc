"""Every git command agentwaves runs goes through :func:`run_git`, the one hardened way of calling git.

Worktrees hold agent-written files, so git must never execute anything from them: every call gets
:mod:`agentwaves.git.harden`'s fixed ``-c`` options (no hooks, no fsmonitor, no submodule recursion, no
signing, no pager), every filter, diff and merge driver the configuration defines is neutralised (filters
emptied, merge drivers replaced by ``git merge-file``; ``diff``/``log``/``show`` get ``--no-ext-diff
--no-textconv``), and the environment is the user's minus secrets and minus every ``GIT_*`` variable but
identity and config location.
Command-line configuration reaches the git processes git starts itself (``GIT_CONFIG_PARAMETERS``), so a
nested repository's own ``core.fsmonitor`` or hooks never run either. See ``docs/security.md``.

Git is driven as a subprocess (never ``repo.index`` and never ``os.chdir``), so each call is independent and
the functions here are safe to call from several threads at once as long as each worktree has one writer at a
time. Failures become :class:`GitError` with a one-line message naming the command and git's first error line.

Ref writes are restricted to agentwaves' own namespaces (``refs/heads/agentwaves/`` and
``refs/heads/agentwaves-groups/``): nothing here moves the user's branches, index or checkout.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agentwaves.errors import AgentwavesError, UsageError
from agentwaves.git.harden import config_key, hardened_args, spawn, stamp
from agentwaves.git.known import is_known_commit, known_commit

STATE_DIR = ".agentwaves"
OWNED_REF_PREFIXES = ("refs/heads/agentwaves/", "refs/heads/agentwaves-groups/", "refs/agentwaves/")
FALLBACK_NAME = "agentwaves"
FALLBACK_EMAIL = "agentwaves@localhost"
_LOCK_RETRIES = 5


class GitError(AgentwavesError):
    """A git command failed; the message names the command and git's first error line."""


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class FileChange:
    """One path changed between two commits. ``added``/``removed`` are None for binary files."""

    path: str
    status: str
    added: int | None
    removed: int | None


def _describe(args: tuple[str, ...]) -> str:
    """``git <subcommand> <args>`` without leading ``-c`` options, shortened to one readable line."""
    rest = list(args)
    while rest and rest[0] in ("-c", "-C"):
        rest = rest[2:]
    text = "git " + " ".join(rest)
    return text if len(text) <= 100 else text[:97] + "..."


def _first_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("fatal:", "error:")):
            return ln
    return lines[0] if lines else "no error output"


def _is_lock_failure(stderr: str) -> bool:
    return ".lock': File exists" in stderr


def run_git(
    cwd: Path,
    *args: str,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> GitResult:
    """Run ``git ARGS`` in ``cwd``, hardened (see the module docstring). Retries briefly when another
    process holds a git lock file."""
    for attempt in range(_LOCK_RETRIES + 1):
        try:
            proc = spawn(cwd, hardened_args(Path(cwd), args), input, env)
        except (FileNotFoundError, NotADirectoryError) as exc:
            what = f"no such directory: {cwd}" if not Path(cwd).is_dir() else "git is not installed"
            raise GitError(f"{_describe(args)} failed: {what}", exit_code=2) from exc
        if proc.returncode != 0 and attempt < _LOCK_RETRIES and _is_lock_failure(proc.stderr):
            time.sleep(0.05 * (attempt + 1))
            continue
        break
    if check and proc.returncode != 0:
        raise GitError(f"{_describe(args)} failed (exit {proc.returncode}): {_first_error_line(proc.stderr)}")
    return GitResult(proc.returncode, proc.stdout, proc.stderr)


def git(
    cwd: Path,
    *args: str,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> str:
    """Run ``git ARGS`` in ``cwd`` and return stdout without its trailing newline."""
    return run_git(cwd, *args, input=input, env=env, check=check).stdout.rstrip("\n")


def find_repo_root(path: Path) -> Path:
    """The top of the working tree containing ``path``; it must have at least one commit."""
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"not a git repository: {path}")
    # one git: the top line, then HEAD's commit (exit 1 and no id when there is none; 128 outside a repo)
    res = run_git(path, "rev-parse", "--show-toplevel", "--verify", "-q", "HEAD^{commit}", check=False)
    out = res.stdout.rstrip("\n")
    top = out.rpartition("\n")[0] if res.returncode == 0 else out
    if res.returncode not in (0, 1) or not top.strip():
        raise UsageError(f"not a git repository: {path}")
    if res.returncode != 0:
        raise UsageError("the repository has no commits yet: make a first commit")
    return Path(top)


def head_sha(repo: Path, rev: str = "HEAD") -> str:
    """The full commit id ``rev`` names.

    A full id that this process already found to name a commit of the repository (every worktree shares
    its object store) is returned without asking git again: a commit never changes, and the run's own
    are pinned against ``gc`` (state/pins.py). Each wave asks about the same few commits several times."""
    if is_known_commit(repo, rev):
        return rev
    sha = git(repo, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}")
    known_commit(repo, sha)
    return sha


def current_branch(repo: Path) -> str | None:
    """The short name of the checked-out branch, or None on a detached HEAD."""
    out = git(repo, "symbolic-ref", "--short", "-q", "HEAD", check=False)
    return out or None


def _status_paths(repo: Path) -> list[str]:
    out = run_git(repo, "status", "--porcelain", "-z", "--untracked-files=normal").stdout
    tokens = out.split("\0")
    paths: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if len(tok) < 4:
            continue
        paths.append(tok[3:])
        if tok[0] in "RC":
            i += 1  # the original path of a rename or copy follows
    return paths


def is_dirty(repo: Path) -> bool:
    """True when the working tree has changes or untracked files (outside ``.agentwaves/``)."""
    prefix = STATE_DIR + "/"
    return any(p != STATE_DIR and not p.startswith(prefix) for p in _status_paths(repo))


def ensure_state_dir(repo: Path) -> Path:
    """Create ``<repo>/.agentwaves/`` with a ``.gitignore`` of ``*`` so it never shows in ``git status``."""
    state = Path(repo) / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    ignore = state / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return state


def identity_args(cwd: Path) -> list[str]:
    """``-c user.name=… -c user.email=…`` for whichever of the two git has no value for; else nothing.

    Asked once per repository and version of its config files (every task commit of a run asks)."""
    key = _identity_key(cwd)
    with _identity_lock:
        cached = _identity_cache.get(key)
    if cached is not None:
        return list(cached)
    out = git(cwd, "config", "--get-regexp", r"^user\.(name|email)$", check=False)
    have = {line.split(" ", 1)[0].lower() for line in out.splitlines() if " " in line}
    args: list[str] = []
    if "user.name" not in have:
        args += ["-c", f"user.name={FALLBACK_NAME}"]
    if "user.email" not in have:
        args += ["-c", f"user.email={FALLBACK_EMAIL}"]
    with _identity_lock:
        _identity_cache[key] = tuple(args)
    return args


_identity_cache: dict[tuple[object, ...], tuple[str, ...]] = {}
_identity_lock = threading.Lock()


def _identity_key(cwd: Path) -> tuple[object, ...]:
    """The repository's config (:func:`config_key`), and the version of each config file outside it."""
    home = Path(os.environ.get("HOME") or Path.home())
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = [os.environ.get("GIT_CONFIG_GLOBAL") or home / ".gitconfig", xdg / "git" / "config"]
    files.append(os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig")
    return (config_key(cwd), os.environ.get("GIT_CONFIG_NOSYSTEM"), *map(str, files), *map(stamp, files))


def literal_pathspecs(paths: Iterable[str]) -> list[str]:
    """Pathspecs for exactly these paths (relative to the worktree root): a file named ``*`` is just that.

    Never mix them with :func:`exclude_pathspecs` in one ``git add``: git 2.39 then skips untracked files.
    """
    return [f":(top,literal){p}" for p in paths]


def exclude_pathspecs(exclude: Iterable[str]) -> list[str]:
    """Pathspecs that keep the given literal paths (relative to the worktree root) out of a command."""
    return [f":(top,exclude,literal){p}" for p in exclude]


def _below_dirs(root: Path, rel: str) -> bool:
    """Whether every parent of ``rel`` under ``root`` is a real directory (no symlink, nothing missing)."""
    here = Path(root)
    for part in Path(rel).parts[:-1]:
        here = here / part
        if here.is_symlink() or not here.is_dir():
            return False
    return True


def clean_message(message: str) -> str:
    """Whitespace clean-up as ``git commit -F`` does it: no trailing spaces, no runs of blank lines."""
    lines = [ln.rstrip() for ln in message.splitlines()]
    out: list[str] = []
    for ln in lines:
        if ln or (out and out[-1]):
            out.append(ln)
    text = "\n".join(out).strip("\n")
    return (text or "agentwaves: commit") + "\n"


def commit_all(
    worktree: Path,
    message: str,
    *,
    allow_empty: bool = False,
    exclude: Iterable[str] = (),
    paths: Iterable[str] | None = None,
) -> str | None:
    """Stage everything (``git add -A``, deletions too) and commit; return the new sha.

    Returns None when nothing changed and ``allow_empty`` is false. Paths in ``exclude`` (relative to the
    worktree root) are never staged: the pool passes the copied, untracked files (``.env``) here. ``paths``
    says every change is in these files (an agent that only used its file tools): only they are staged,
    which costs what changed instead of a scan of the whole worktree; if git refuses one (an ignored file),
    everything is staged as without ``paths``. Hooks and
    signing are skipped: these are machine commits on agentwaves' own branches. The commit is made with
    ``write-tree`` + ``commit-tree`` + ``update-ref HEAD NEW OLD`` (no second scan of the working tree);
    ``git commit`` is used when a merge or cherry-pick is in progress or the branch has no commit yet.
    """
    exclude = [p for p in exclude if _below_dirs(worktree, p)]  # git refuses one beyond a symlink
    staged = None if paths is None else sorted(set(paths) - set(exclude))
    if staged is None or (
        staged and run_git(worktree, "add", "-A", "--", *literal_pathspecs(staged), check=False).returncode
    ):
        git(worktree, "add", "-A", "--", ".", *exclude_pathspecs(exclude))
    tree = git(worktree, "write-tree")
    res = run_git(worktree, "rev-parse", "--absolute-git-dir", "HEAD", "HEAD^{tree}", check=False)
    lines = res.stdout.split()
    if res.returncode == 0 and len(lines) == 3:
        gitdir, head, head_tree = lines
        if tree == head_tree and not allow_empty:
            return None
        if not any((Path(gitdir) / f).exists() for f in ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD")):
            text = clean_message(message)
            new = git(
                worktree,
                *identity_args(worktree),
                "commit-tree",
                "--no-gpg-sign",
                tree,
                "-p",
                head,
                input=text,
            )
            subject = text.splitlines()[0]
            git(worktree, "update-ref", "-m", f"commit: {subject}", "HEAD", new, head)
            known_commit(worktree, new, tree=tree)
            return new
    args = [*identity_args(worktree), "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-F", "-"]
    if allow_empty:
        args.append("--allow-empty")
    if run_git(worktree, "diff", "--cached", "--quiet", check=False).returncode == 0 and not allow_empty:
        return None
    git(worktree, *args, input=message)
    return head_sha(worktree)


def _numstat_count(text: str) -> int | None:
    return None if text == "-" else int(text)


def diff_stat(repo: Path, base: str, head: str) -> list[FileChange]:
    """Files changed from ``base`` to ``head`` (renames off), sorted by path."""
    common = ("diff", "--no-renames", "--no-ext-diff", "--no-textconv", "-z")
    statuses: dict[str, str] = {}
    toks = run_git(repo, *common, "--name-status", base, head, "--").stdout.split("\0")
    for i in range(0, len(toks) - 1, 2):
        if toks[i]:
            statuses[toks[i + 1]] = toks[i][0]
    counts: dict[str, tuple[int | None, int | None]] = {}
    for rec in run_git(repo, *common, "--numstat", base, head, "--").stdout.split("\0"):
        if rec:
            added, removed, path = rec.split("\t", 2)
            counts[path] = (_numstat_count(added), _numstat_count(removed))
    return [
        FileChange(path, status, *counts.get(path, (None, None))) for path, status in sorted(statuses.items())
    ]


def changed_paths(repo: Path, base: str, head: str) -> set[str]:
    """Paths that differ between ``base`` and ``head`` (renames off)."""
    out = run_git(repo, "diff", "--no-renames", "--name-only", "-z", base, head, "--").stdout
    return {p for p in out.split("\0") if p}


def _full_ref(ref: str) -> str:
    return ref if ref.startswith("refs/") else f"refs/heads/{ref}"


def check_owned_ref(ref: str) -> str:
    """The full ref name; raises GitError unless it lies in agentwaves' own namespaces."""
    full = _full_ref(ref)
    if not full.startswith(OWNED_REF_PREFIXES):
        raise GitError(f"refusing to modify {full}: agentwaves only writes its own refs/heads/agentwaves*/")
    return full


def branch_exists(repo: Path, name: str) -> bool:
    """True if the local branch ``name`` exists."""
    res = run_git(repo, "show-ref", "--verify", "--quiet", _full_ref(name), check=False)
    return res.returncode == 0


def delete_branch(repo: Path, name: str, force: bool = False) -> bool:
    """Delete one of agentwaves' branches (``git branch -d``/``-D``); False if it did not exist."""
    check_owned_ref(name)
    short = name.removeprefix("refs/heads/")
    if not branch_exists(repo, short):
        return False
    git(repo, "branch", "-D" if force else "-d", short)
    return True


def update_ref(repo: Path, ref: str, new: str, old: str | None) -> None:
    """Point ``ref`` at ``new`` only if it currently is ``old`` (None: it must not exist yet)."""
    full = check_owned_ref(ref)
    new_sha = head_sha(repo, new)
    expected = "0" * len(new_sha) if old is None else old
    git(repo, "update-ref", "-m", "agentwaves", full, new_sha, expected)


def worktree_changes(root: Path) -> set[str]:
    """Paths differing from HEAD (modified, added, deleted, renamed, untracked), per ``git status``."""
    done = run_git(
        root,
        "status",
        "--porcelain",
        "-z",
        "--untracked-files=all",
        env={"GIT_OPTIONAL_LOCKS": "0"},
        check=False,
    )
    if done.returncode != 0:
        raise AgentwavesError(f"git status failed in {root}: {done.stderr}")
    entries = done.stdout.split("\0")
    paths: set[str] = set()
    i = 0
    while i < len(entries):
        entry, i = entries[i], i + 1
        if len(entry) < 4:
            continue
        paths.add(entry[3:])
        if "R" in entry[:2] or "C" in entry[:2]:
            paths.add(entries[i])
            i += 1
    return paths
