"""Git worktrees for groups and for the integration branch: branch names, add, find, reuse, remove,
prune by path. The reusable pool of group worktrees is :mod:`agentwaves.git.pool`.

Each group runs in ``<root>/<name>`` on its own branch ``agentwaves-groups/<run-id>/<group>``.

A worktree left behind by a killed process is recovered: acquiring a name whose directory git still knows
as a worktree resets and reuses it. The user's own checkout (the main worktree) is never touched.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agentwaves.errors import UsageError
from agentwaves.git.ops import GitError, branch_exists, check_owned_ref, git, head_sha

INTEGRATION_PREFIX = "agentwaves/"
GROUP_PREFIX = "agentwaves-groups/"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # "+" joins merged groups: "csv+json"

_admin_locks: dict[str, threading.Lock] = {}
_admin_guard = threading.Lock()


@dataclass(frozen=True)
class WorktreeInfo:
    """One entry of ``git worktree list``; ``branch`` is the short name or None when detached."""

    path: Path
    branch: str | None
    head: str | None
    locked: bool = False
    prunable: bool = False
    bare: bool = False


def check_name(kind: str, name: str) -> str:
    if not _NAME_RE.match(name) or name.endswith(".lock") or ".." in name:
        raise UsageError(f"invalid {kind} {name!r}: use letters, digits, '_', '-' or '.'")
    return name


def integration_branch(run_id: str) -> str:
    """``agentwaves/<run-id>``: the branch that gets one commit per wave."""
    return INTEGRATION_PREFIX + check_name("run id", run_id)


def group_branch(run_id: str, group: str) -> str:
    """``agentwaves-groups/<run-id>/<group>``: a separate namespace, as git cannot hold ``a`` and ``a/b``."""
    return f"{GROUP_PREFIX}{check_name('run id', run_id)}/{check_name('group name', group)}"


def admin_lock(repo: Path) -> threading.Lock:
    """One lock per repository for worktree administration (add, move, remove, prune)."""
    key = str(Path(repo).resolve())
    with _admin_guard:
        return _admin_locks.setdefault(key, threading.Lock())


def list_worktrees(repo: Path) -> list[WorktreeInfo]:
    """All worktrees git knows for ``repo``; the first is the main worktree."""
    result: list[WorktreeInfo] = []
    with admin_lock(repo):  # a worktree being added meanwhile is half-made: git would die reading it
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


def find_worktree(repo: Path, path: Path) -> tuple[WorktreeInfo | None, bool]:
    """The worktree entry for ``path`` and whether it is the main worktree."""
    target = Path(path).resolve()
    for i, info in enumerate(list_worktrees(repo)):
        if info.path.resolve() == target:
            return info, i == 0
    return None, False


def prune(repo: Path, paths: Iterable[Path] = (), *, under: Path | None = None) -> None:
    """Forget agentwaves' own worktrees whose directories are gone: those at ``paths`` or below ``under``.

    Never ``git worktree prune``: that forgets every worktree of the repository whose directory is absent
    at that moment, the user's own too (a drive briefly unplugged), with its index and staged work."""
    targets = {Path(p).resolve() for p in paths}
    root = Path(under).resolve() if under is not None else None
    admin = Path(repo) / git(repo, "rev-parse", "--git-common-dir") / "worktrees"
    with admin_lock(repo):
        if not admin.is_dir():
            return
        for entry in admin.iterdir():
            try:
                where = (entry / (entry / "gitdir").read_text().strip()).resolve().parent
            except OSError:
                continue
            ours = where in targets or (root is not None and where.is_relative_to(root))
            if ours and not where.exists() and not (entry / "locked").exists():
                shutil.rmtree(entry, ignore_errors=True)


def clear_stale_dir(repo: Path, path: Path) -> None:
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


def add_unpopulated(repo: Path, path: Path, new_branch: str | None, start: str) -> None:
    """``git worktree add --no-checkout`` under the admin lock (cheap); the caller checks files out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = ["worktree", "add", "-q", "--no-checkout"]
    if new_branch is not None:
        args += ["-b", new_branch]
    with admin_lock(repo):
        git(repo, *args, str(path), start)


def add_worktree(repo: Path, path: Path, branch: str, base: str) -> Path:
    """A worktree at ``path`` on ``branch`` (created at ``base`` if new; an existing branch is kept as is).

    Reuses ``path`` if it already is a worktree on ``branch`` (e.g. the integration worktree on resume).
    """
    check_owned_ref(branch)
    path = Path(path).resolve()
    info, is_main = find_worktree(repo, path)
    if info is not None:
        if is_main:
            raise GitError(f"refusing to use the main worktree {path}")
        if info.branch == branch and path.is_dir():
            return path
        if path.is_dir():
            raise GitError(f"worktree {path} is on {info.branch or 'a detached HEAD'}, not {branch}")
        prune(repo, [path])
    clear_stale_dir(repo, path)
    if branch_exists(repo, branch):
        add_unpopulated(repo, path, None, branch)
    else:
        add_unpopulated(repo, path, branch, head_sha(repo, base))
    git(path, "reset", "-q", "--hard")
    return path


def add_detached(repo: Path, path: Path, commit: str) -> Path:
    """A worktree at ``path`` with ``commit`` checked out on a detached HEAD (scratch work, no branch)."""
    clear_stale_dir(repo, path)
    add_unpopulated(repo, path, None, head_sha(repo, commit))
    git(path, "reset", "-q", "--hard")
    return path


def switch_branch(worktree: Path, branch: str, sha: str) -> None:
    """``checkout -f -B branch sha``, without what makes that unsafe beside a concurrent ``worktree add``:
    checkout reads every worktree's HEAD (to refuse a branch checked out elsewhere), and git dies on a
    worktree whose administrative files are half-written. Our branches are one per pool worktree."""
    git(worktree, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
    git(worktree, "reset", "-q", "--hard", sha)


def reuse_worktree(worktree: Path, branch: str, sha: str, clean_head: str | None) -> None:
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
    switch_branch(worktree, branch, sha)
    git(worktree, "clean", "-ffdq")


def remove_worktree(repo: Path, path: Path) -> None:
    """Remove a worktree and its directory (``git worktree remove --force``); never the main worktree."""
    path = Path(path).resolve()
    info, is_main = find_worktree(repo, path)
    if is_main:
        raise GitError(f"refusing to remove the main worktree {path}")
    if info is None or not path.exists():
        prune(repo, [path])
        return
    with admin_lock(repo):
        git(repo, "worktree", "remove", "--force", str(path))
