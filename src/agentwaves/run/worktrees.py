"""Git worktrees for groups (a reusable pool) and for the integration branch.

Each group runs in ``<root>/<name>`` on its own branch ``agentwaves-groups/<run-id>/<group>``. A released
worktree is detached and kept; the next :meth:`WorktreePool.acquire` moves it to the new name and resets it
to the new base: by changing only the files that differ when its last user says it left it clean
(``release(clean_head=...)``), else with ``reset --hard`` + ``clean -ffd``, which stat every file.
Git-ignored files (copied ``node_modules``, build caches) survive a reuse; copied files are refreshed.

A worktree left behind by a killed process is recovered: acquiring a name whose directory git still knows
as a worktree resets and reuses it. The user's own checkout (the main worktree) is never touched.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agentwaves.agents.confined import run_confined
from agentwaves.agents.sandbox import NoSandbox, Sandbox
from agentwaves.errors import AgentwavesError, UsageError
from agentwaves.run.copyin import copy_in, sync_dir
from agentwaves.run.gitops import GitError, branch_exists, check_owned_ref, commit_all, git, head_sha

INTEGRATION_PREFIX = "agentwaves/"
GROUP_PREFIX = "agentwaves-groups/"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # "+" joins merged groups: "csv+json"
_GLOB_CHARS = set("*?[")
SETUP_TIMEOUT = 900.0
SETUP_OUTPUT_CAP = 20_000

_admin_locks: dict[str, threading.Lock] = {}
_admin_guard = threading.Lock()


class SetupError(AgentwavesError):
    """A worktree's setup command failed; the message names the command, exit code and last error line."""


@dataclass(frozen=True)
class WorktreeInfo:
    """One entry of ``git worktree list``; ``branch`` is the short name or None when detached."""

    path: Path
    branch: str | None
    head: str | None
    locked: bool = False
    prunable: bool = False
    bare: bool = False


def _check_name(kind: str, name: str) -> str:
    if not _NAME_RE.match(name) or name.endswith(".lock") or ".." in name:
        raise UsageError(f"invalid {kind} {name!r}: use letters, digits, '_', '-' or '.'")
    return name


def integration_branch(run_id: str) -> str:
    """``agentwaves/<run-id>``: the branch that gets one commit per wave."""
    return INTEGRATION_PREFIX + _check_name("run id", run_id)


def group_branch(run_id: str, group: str) -> str:
    """``agentwaves-groups/<run-id>/<group>``: a separate namespace, as git cannot hold ``a`` and ``a/b``."""
    return f"{GROUP_PREFIX}{_check_name('run id', run_id)}/{_check_name('group name', group)}"


def _admin_lock(repo: Path) -> threading.Lock:
    """One lock per repository for worktree administration (add, move, remove, prune)."""
    key = str(Path(repo).resolve())
    with _admin_guard:
        return _admin_locks.setdefault(key, threading.Lock())


def list_worktrees(repo: Path) -> list[WorktreeInfo]:
    """All worktrees git knows for ``repo``; the first is the main worktree."""
    result: list[WorktreeInfo] = []
    with _admin_lock(repo):  # a worktree being added meanwhile is half-made: git would die reading it
        out = git(repo, "worktree", "list", "--porcelain", "-z")
    for record in out.split("\0\0"):
        fields = dict(tok.partition(" ")[::2] for tok in record.split("\0") if tok)
        if "worktree" in fields:
            branch = fields.get("branch")
            result.append(
                WorktreeInfo(
                    path=Path(fields["worktree"]),
                    branch=branch.removeprefix("refs/heads/") if branch else None,
                    head=fields.get("HEAD"),
                    locked="locked" in fields,
                    prunable="prunable" in fields,
                    bare="bare" in fields,
                )
            )
    return result


def _find(repo: Path, path: Path) -> tuple[WorktreeInfo | None, bool]:
    """The worktree entry for ``path`` and whether it is the main worktree."""
    target = Path(path).resolve()
    for i, info in enumerate(list_worktrees(repo)):
        if info.path.resolve() == target:
            return info, i == 0
    return None, False


def prune(repo: Path) -> None:
    """Forget worktrees whose directories are gone (``git worktree prune``)."""
    with _admin_lock(repo):
        git(repo, "worktree", "prune")


def _clear_stale_dir(repo: Path, path: Path) -> None:
    """Remove a directory git no longer knows as a worktree, if it is empty or a leftover worktree of ours."""
    if not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        return
    dotgit = path / ".git"
    if dotgit.is_file():
        text = dotgit.read_text(errors="replace").strip()
        gitdir = Path(text.removeprefix("gitdir:").strip())
        worktrees_dir = (Path(repo) / git(repo, "rev-parse", "--git-common-dir") / "worktrees").resolve()
        if text.startswith("gitdir:") and gitdir.resolve().parent == worktrees_dir:
            shutil.rmtree(path)
            return
    raise GitError(f"cannot create worktree {path}: the directory exists and is not a worktree of {repo}")


def _add_unpopulated(repo: Path, path: Path, new_branch: str | None, start: str) -> None:
    """``git worktree add --no-checkout`` under the admin lock (cheap); the caller checks files out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = ["worktree", "add", "-q", "--no-checkout"]
    if new_branch is not None:
        args += ["-b", new_branch]
    with _admin_lock(repo):
        git(repo, *args, str(path), start)


def add_worktree(repo: Path, path: Path, branch: str, base: str) -> Path:
    """A worktree at ``path`` on ``branch`` (created at ``base`` if new; an existing branch is kept as is).

    Reuses ``path`` if it already is a worktree on ``branch`` (e.g. the integration worktree on resume).
    """
    check_owned_ref(branch)
    path = Path(path).resolve()
    info, is_main = _find(repo, path)
    if info is not None:
        if is_main:
            raise GitError(f"refusing to use the main worktree {path}")
        if info.branch == branch and path.is_dir():
            return path
        if path.is_dir():
            raise GitError(f"worktree {path} is on {info.branch or 'a detached HEAD'}, not {branch}")
        prune(repo)
    _clear_stale_dir(repo, path)
    if branch_exists(repo, branch):
        _add_unpopulated(repo, path, None, branch)
    else:
        _add_unpopulated(repo, path, branch, head_sha(repo, base))
    git(path, "reset", "-q", "--hard")
    return path


def add_detached(repo: Path, path: Path, commit: str) -> Path:
    """A worktree at ``path`` with ``commit`` checked out on a detached HEAD (scratch work, no branch)."""
    _clear_stale_dir(repo, path)
    _add_unpopulated(repo, path, None, head_sha(repo, commit))
    git(path, "reset", "-q", "--hard")
    return path


def _switch(worktree: Path, branch: str, sha: str) -> None:
    """``checkout -f -B branch sha``, without what makes that unsafe beside a concurrent ``worktree add``:
    checkout reads every worktree's HEAD (to refuse a branch checked out elsewhere), and git dies on a
    worktree whose administrative files are half-written. Our branches are one per pool worktree."""
    git(worktree, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
    git(worktree, "reset", "-q", "--hard", sha)


def _reuse(worktree: Path, branch: str, sha: str, clean_head: str | None) -> None:
    """Bring a reused worktree to ``sha`` on ``branch``, untracked files gone, ignored ones kept.

    A worktree known to hold exactly ``clean_head`` (plus copied and ignored files) is switched by a
    two-tree ``read-tree -m -u``, which touches only the files that differ; otherwise, or if read-tree
    refuses (a file it must change was edited after all), ``reset --hard`` and ``clean`` stat and walk
    every file of the repository."""
    if clean_head is not None:
        try:
            git(worktree, "read-tree", "-m", "-u", clean_head, sha)
            git(worktree, "update-ref", "-m", "agentwaves: acquire", f"refs/heads/{branch}", sha)
            git(worktree, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
            return
        except GitError:
            pass
    _switch(worktree, branch, sha)
    git(worktree, "clean", "-ffdq")


def remove_worktree(repo: Path, path: Path) -> None:
    """Remove a worktree and its directory (``git worktree remove --force``); never the main worktree."""
    path = Path(path).resolve()
    info, is_main = _find(repo, path)
    if is_main:
        raise GitError(f"refusing to remove the main worktree {path}")
    if info is None or not path.exists():
        prune(repo)
        return
    with _admin_lock(repo):
        git(repo, "worktree", "remove", "--force", str(path))


class WorktreePool:
    """Group worktrees under ``root``: created on demand, reset and reused after :meth:`release`.

    ``copy_files`` (paths or globs relative to the repository) are copied from the user's checkout into
    every worktree handed out; ``setup`` is a shell command run once in each NEW worktree. All methods may
    be called from several threads; each worktree has one user at a time.
    """

    def __init__(
        self,
        repo: Path,
        root: Path,
        *,
        copy_files: Iterable[str] = (),
        setup: str | None = None,
        setup_env: Mapping[str, str] | None = None,
        setup_timeout: float | None = None,
        reuse: bool = True,
        sandbox: Sandbox | None = None,
        setup_network: bool = True,
        setup_writable: Iterable[Path] = (),
    ) -> None:
        self.repo = Path(repo).resolve()
        self.root = Path(root).resolve()
        self.copy_files = list(copy_files)
        self.setup = setup
        self.setup_env = dict(setup_env or {})
        self.setup_timeout = setup_timeout
        self.reuse = reuse
        self.sandbox: Sandbox = sandbox or NoSandbox()
        self.setup_network = setup_network
        self.setup_writable = [Path(p) for p in setup_writable]
        self._lock = threading.Lock()
        self._free: list[Path] = []
        self._busy: set[Path] = set()
        self._known: set[Path] = set()
        self._untracked_copies: dict[Path, list[str]] = {}
        self._clean: dict[Path, str] = {}  # released worktree -> the commit its files exactly hold

    def acquire(self, name: str, branch: str, base: str) -> Path:
        """``root/<name>`` checked out on ``branch``, (re)created at ``base``; reuses a free worktree."""
        _check_name("worktree name", name)
        check_owned_ref(branch)
        base_sha = head_sha(self.repo, base)
        target = self.root / name
        with self._lock:
            if target in self._busy:
                raise GitError(f"worktree {name} is already in use")
            source: Path | None = None
            if target in self._free:
                self._free.remove(target)
                source = target
            elif not target.exists() and self.reuse and self._free:
                source = self._free.pop()
            clean_head = self._clean.pop(source, None) if source is not None else None
            self._busy.add(target)
            self._known.add(target)
        try:
            return self._prepare(target, source, branch, base_sha, clean_head)
        except BaseException:
            with self._lock:
                self._busy.discard(target)
            raise

    def release(self, path: Path, *, clean_head: str | None = None) -> None:
        """Detach the worktree and return it to the pool (or remove it when ``reuse`` is off).

        ``clean_head``: the caller knows the worktree's files are exactly this commit (its last commit
        staged every change and nothing wrote since), so the next :meth:`acquire` may switch it by
        changing only what differs; without it the next acquire resets and cleans the whole worktree."""
        path = Path(path).resolve()
        with self._lock:
            if path not in self._busy:
                return
        if not self.reuse:
            self.remove(path)
            return
        try:  # detach without touching the index or files (cheaper than ``checkout --detach``)
            git(path, "update-ref", "--no-deref", "-m", "agentwaves: release", "HEAD", "HEAD")
        except GitError:
            self.remove(path)
            return
        with self._lock:
            self._busy.discard(path)
            if clean_head:
                self._clean[path] = clean_head
            if path not in self._free:
                self._free.append(path)

    def remove(self, path: Path) -> None:
        """Remove one worktree for good."""
        path = Path(path).resolve()
        with self._lock:
            self._busy.discard(path)
            self._known.discard(path)
            self._untracked_copies.pop(path, None)
            self._clean.pop(path, None)
            if path in self._free:
                self._free.remove(path)
        remove_worktree(self.repo, path)

    def close(self) -> None:
        """Remove every worktree this pool handed out, then prune."""
        with self._lock:
            paths = sorted(self._known | set(self._free) | self._busy)
        for p in paths:
            self.remove(p)
        prune(self.repo)
        if self.root.is_dir() and not any(self.root.iterdir()):
            self.root.rmdir()

    def commit(
        self, path: Path, message: str, *, allow_empty: bool = False, paths: Iterable[str] | None = None
    ) -> str | None:
        """:func:`commit_all` in a pool worktree, leaving out copied files git would otherwise pick up."""
        return commit_all(
            path, message, allow_empty=allow_empty, exclude=self.untracked_copies(path), paths=paths
        )

    def untracked_copies(self, path: Path) -> list[str]:
        """Copied paths that are neither tracked nor ignored in this worktree (never to be committed)."""
        with self._lock:
            return list(self._untracked_copies.get(Path(path).resolve(), []))

    def _prepare(
        self, target: Path, source: Path | None, branch: str, base_sha: str, clean_head: str | None = None
    ) -> Path:
        if source is None:
            info, is_main = _find(self.repo, target)
            if is_main:
                raise GitError(f"refusing to use the main worktree {target}")
            if info is not None and target.is_dir():
                source = target  # left behind by an earlier process: recover it
            elif info is not None:
                prune(self.repo)  # its directory was deleted by hand
            else:
                _clear_stale_dir(self.repo, target)
        if source is not None and source != target and not self._move(source, target):
            source = None
        if source is not None and not target.is_dir():
            prune(self.repo)
            source = None
        if source is not None:
            try:
                _reuse(target, branch, base_sha, clean_head)
                self._copy(target)
            except BaseException:
                with self._lock:
                    self._free.append(target)
                raise
            return target
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _add_unpopulated(self.repo, target, None, base_sha)
            _switch(target, branch, base_sha)
            self._copy(target)
            self._run_setup(target)
        except BaseException:
            if target.exists():
                with contextlib.suppress(GitError):
                    remove_worktree(self.repo, target)
            with self._lock:
                self._known.discard(target)
            raise
        return target

    def _move(self, source: Path, target: Path) -> bool:
        try:
            with _admin_lock(self.repo):
                git(self.repo, "worktree", "move", str(source), str(target))
        except GitError:
            with self._lock:
                self._free.append(source)
            return False
        with self._lock:
            self._known.discard(source)
            self._untracked_copies.pop(source, None)
        return True

    def _copy(self, target: Path) -> None:
        copied: list[str] = []
        for pattern in self.copy_files:
            norm = pattern.replace("\\", "/").rstrip("/")
            if not norm or norm.startswith("/") or ".." in norm.split("/"):
                raise UsageError(f"copy_files entry {pattern!r} must be a path inside the repository")
            sources = sorted(self.repo.glob(norm)) if _GLOB_CHARS & set(norm) else [self.repo / norm]
            for src in sources:
                if not (src.exists() or src.is_symlink()):
                    continue
                rel = src.relative_to(self.repo)
                if rel.parts and rel.parts[0] == ".git":
                    continue
                if src.is_dir() and not src.is_symlink():
                    sync_dir(src, target, PurePosixPath(rel.as_posix()))
                else:
                    copy_in(src, target, PurePosixPath(rel.as_posix()))
                copied.append(rel.as_posix())
        untracked: list[str] = []
        if copied:
            specs = [f":(literal){c}" for c in copied]
            out = git(target, "ls-files", "-z", "--others", "--exclude-standard", "--", *specs)
            untracked = [p for p in out.split("\0") if p]
        with self._lock:
            self._untracked_copies[target] = untracked

    def _run_setup(self, target: Path) -> None:
        """The setup command, confined like an agent's ``run`` (worktree and ``setup_writable`` writable,
        no secrets), with the network unless ``setup_network`` is off."""
        if not self.setup:
            return
        timeout = self.setup_timeout or SETUP_TIMEOUT
        result = run_confined(
            self.setup,
            target,
            sandbox=self.sandbox,
            timeout=timeout,
            max_output=SETUP_OUTPUT_CAP,
            network=self.setup_network,
            env=self.setup_env,
            writable=[p for p in self.setup_writable if p.is_dir()],
        )
        if result.timed_out:
            raise SetupError(
                f"setup command {self.setup!r} did not finish in {timeout:g} s in {target.name} "
                "(setup_timeout in agentwaves.yaml)"
            )
        if result.exit_code != 0:
            lines = [ln.strip() for ln in result.output.splitlines() if ln.strip()]
            last = lines[-1] if lines else "no output"
            code = "killed: too much output" if result.output_limit_hit else f"exit {result.exit_code}"
            raise SetupError(f"setup command {self.setup!r} failed in {target.name} ({code}): {last}")
