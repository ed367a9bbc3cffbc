"""The worktree pool: group worktrees made once and reused, prepared with ``copy_files`` and ``setup``.

A released worktree is detached and kept; the next :meth:`WorktreePool.acquire` moves it to the new name
and resets it to the new base: by changing only the files that differ when its last user says it left it
clean (``release(clean_head=...)``), else with ``reset --hard`` + ``clean -ffd``, which stat every file.
Git-ignored files (copied ``node_modules``, build caches) survive a reuse; copied files are refreshed.
The plumbing (add, find, remove, prune by path) is :mod:`agentwaves.git.worktrees`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from agentwaves.errors import AgentwavesError, UsageError
from agentwaves.git.copyin import copy_in, sync_dir
from agentwaves.git.ops import GitError, check_owned_ref, commit_all, git, head_sha
from agentwaves.git.worktrees import (
    add_unpopulated,
    admin_lock,
    check_name,
    clear_stale_dir,
    find_worktree,
    prune,
    remove_worktree,
    reuse_worktree,
    switch_branch,
)
from agentwaves.sandbox.bwrap import NoSandbox, Sandbox
from agentwaves.sandbox.confined import run_confined

_GLOB_CHARS = set("*?[")

SETUP_TIMEOUT = 900.0
SETUP_OUTPUT_CAP = 20_000


class SetupError(AgentwavesError):
    """A worktree's setup command failed; the message names the command, exit code and last error line."""


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
        check_name("worktree name", name)
        check_owned_ref(branch)
        base_sha = head_sha(self.repo, base)  # a commit found once is not asked about again
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

    def has_room(self, limit: int) -> bool:
        """Whether a worktree can be had now without making more than ``limit`` in all: a free one, or
        fewer than ``limit`` so far (always without ``reuse``: each group gets a new one anyway)."""
        with self._lock:
            return bool(self._free) or not self.reuse or len(self._known) < limit

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
        prune(self.repo, under=self.root)
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
            info, is_main = find_worktree(self.repo, target)
            if is_main:
                raise GitError(f"refusing to use the main worktree {target}")
            if info is not None and target.is_dir():
                source = target  # left behind by an earlier process: recover it
            elif info is not None:
                prune(self.repo, [target])  # its directory was deleted by hand
            else:
                clear_stale_dir(self.repo, target)
        if source is not None and source != target and not self._move(source, target):
            source = None
        if source is not None and not target.is_dir():
            prune(self.repo, [target])
            source = None
        if source is not None:
            try:
                reuse_worktree(target, branch, base_sha, clean_head)
                self._copy(target)
            except BaseException:
                with self._lock:
                    self._free.append(target)
                raise
            return target
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            add_unpopulated(self.repo, target, None, base_sha)
            switch_branch(target, branch, base_sha)
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
            with admin_lock(self.repo):
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
