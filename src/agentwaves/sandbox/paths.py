"""The single gate every agent path goes through: relative to the worktree, no ``..``, nothing git treats as
``.git``, no symlink (of the target or any parent) that leads outside the worktree or into its ``.git``,
and no write under ``.agentwaves/`` (agentwaves' own directory, never part of a run).

Checking a path and then using it by name is a race: a sibling task sharing the worktree can swap a
directory for a symlink in between. So the file tools never hand a path to the kernel to resolve. They
walk it component by component from an open directory descriptor (``openat`` with ``O_NOFOLLOW``), resolve
symlinks themselves (only within the worktree), and do the I/O on the descriptors they hold:
:func:`open_beneath`, :func:`parent_beneath` and :func:`walk_beneath`. Also the glob matcher of
``list_files``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MAX_LINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NTFS_SHORT = re.compile(r"git~\d+", re.IGNORECASE)
STATE_DIR = ".agentwaves"  # agentwaves' own directory in the user's checkout: never part of a run


class PathRefused(Exception):
    """A path the agent may not touch; the message is shown to the agent."""


def is_dot_git(part: str) -> bool:
    """Whether git treats this path component as ``.git`` (and refuses to commit it, or would write into a
    repository): any case, with trailing spaces or dots (``.git ``, ``.git.``), an NTFS stream
    (``.git::$INDEX_ALLOCATION``) or the 8.3 short name ``git~1``."""
    low = part.lower()
    return low.split(":", 1)[0].rstrip(" .") == ".git" or bool(_NTFS_SHORT.fullmatch(low.rstrip(" .")))


def _check(path: str) -> tuple[str, ...]:
    """The components of ``path`` if it passes the lexical rules, else :class:`PathRefused`."""
    if not path or "\0" in path:
        raise PathRefused("path must be a non-empty relative path without NUL characters ('.' is the root)")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise PathRefused(f"{path}: absolute paths are not allowed; use a path relative to the worktree root")
    if ".." in pure.parts:
        raise PathRefused(f"{path}: '..' is not allowed; use a path relative to the worktree root")
    for part in pure.parts:
        if is_dot_git(part):
            shown = "" if part.lower() == ".git" else f" ({part!r} is what git treats as .git)"
            raise PathRefused(f"{path}: .git is off limits{shown}; the tool commits for you")
    return pure.parts


def confine(root: Path, path: str, *, write: bool = False) -> Path:
    """The absolute path for ``path`` inside the worktree ``root``, or :class:`PathRefused`.

    Refuses absolute paths, ``..``, any component git treats as ``.git``, and any existing target or parent
    that resolves outside ``root`` or into its ``.git``. With ``write``, also refuses an existing symlink or
    non-regular file as the target (content is only ever replaced in regular files). The tools do their
    I/O through :func:`open_beneath` and :func:`parent_beneath`, which check all of this again, race-free.
    """
    parts = _check(path)
    real_root = root.resolve(strict=True)
    with _Walk(real_root, path) as walk, contextlib.suppress(FileNotFoundError):
        _, fd = walk.resolve(list(parts), final="parent" if write else "any")
        if fd is not None:
            os.close(fd)
    return real_root.joinpath(*parts)


@dataclass
class _Walk:
    """One component-by-component walk from the worktree root; holds the descriptors of the directories
    on the way (so ``..`` in a symlink target goes back to the directory it came from, not to the kernel's
    idea of its parent)."""

    root: Path
    shown: str
    fds: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def __enter__(self) -> _Walk:
        self.fds = [os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []

    @property
    def fd(self) -> int:
        return self.fds[-1]

    def _enter(self, name: str, fd: int) -> None:
        if is_dot_git(name):
            os.close(fd)
            raise PathRefused(f"{self.shown}: resolves into .git, which is off limits")
        self.fds.append(fd)
        self.names.append(name)

    def _explain_link(self, parts: list[str]) -> None:
        """Raise the more telling refusal (outside the worktree, into .git) for a symlink, if there is one."""
        with _Walk(self.root, self.shown) as sub, contextlib.suppress(OSError):
            _, fd = sub.resolve(parts, final="any")
            if fd is not None:
                os.close(fd)

    def _is_link(self, name: str) -> bool:
        try:
            return stat.S_ISLNK(os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def _link(self, name: str, pending: list[str], links: int) -> int:
        """Replace ``name`` (a symlink) by its target's components in ``pending``; count the link."""
        if links >= MAX_LINKS:
            raise PathRefused(f"{self.shown}: too many levels of symbolic links")
        try:
            target = os.readlink(name, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # swapped back to a non-link: look at it again
                pending.insert(0, name)
                return links + 1
            raise
        pure = PurePosixPath(target)
        if pure.is_absolute():
            if not pure.is_relative_to(self.root):
                raise PathRefused(f"{self.shown}: resolves outside the worktree (through a symlink)")
            while len(self.fds) > 1:
                os.close(self.fds.pop())
                self.names.pop()
            pure = pure.relative_to(self.root)
        pending[:0] = list(pure.parts)
        return links + 1

    def resolve(self, pending: list[str], *, final: str, create: bool = False) -> tuple[str, int | None]:
        """Walk ``pending``; return the last component's name and, unless ``final`` is ``parent``, an open
        descriptor of it. ``final``: ``file`` (opened read-only), ``dir`` (opened as a directory), ``any``
        (either), ``parent`` (not opened; refused if it is a symlink or not a regular file). ``create``
        makes missing parent directories. Symlinks are resolved here, within the worktree only."""
        links = 0
        if not pending:
            if final == "parent":
                raise PathRefused(f"{self.shown}: is the worktree root, not a file")
            return ".", os.dup(self.fd)
        while pending:
            name = pending.pop(0)
            if name in ("", "."):
                if not pending and final != "parent":
                    return ".", os.dup(self.fd)
                continue
            if name == "..":
                if len(self.fds) == 1:
                    raise PathRefused(f"{self.shown}: resolves outside the worktree (through a symlink)")
                os.close(self.fds.pop())
                self.names.pop()
                continue
            if is_dot_git(name):
                raise PathRefused(f"{self.shown}: resolves into .git, which is off limits")
            if final == "parent" and len(self.fds) == 1 and name.lower() == STATE_DIR:
                raise PathRefused(
                    f"{self.shown}: {STATE_DIR}/ is agentwaves' own directory; nothing may be written there"
                )
            last = not pending
            if last and final == "parent":
                try:
                    mode = os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode
                except FileNotFoundError:
                    return name, None
                if stat.S_ISLNK(mode):
                    self._explain_link([*self.names, name])
                    raise PathRefused(f"{self.shown}: is a symbolic link; refusing to write through it")
                if not stat.S_ISREG(mode):
                    raise PathRefused(f"{self.shown}: is not a regular file")
                return name, None
            flags = _FILE_FLAGS if last and final in ("file", "any") else _DIR_FLAGS
            try:
                fd = os.open(name, flags, dir_fd=self.fd)
            except FileNotFoundError:
                if not (create and not last):
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, dir_fd=self.fd)
                pending.insert(0, name)
                links += 1  # bounded retries if something keeps removing it
                if links > MAX_LINKS:
                    raise
                continue
            except OSError as exc:
                if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and self._is_link(name)):
                    links = self._link(name, pending, links)  # a symlink: resolve it ourselves
                    continue
                if exc.errno == errno.ENOTDIR:
                    raise PathRefused(f"{self.shown}: {name} is not a directory") from None
                raise
            if last:
                if final == "dir" and not stat.S_ISDIR(os.fstat(fd).st_mode):
                    os.close(fd)
                    raise PathRefused(f"{self.shown}: not a directory")
                if is_dot_git(name):
                    os.close(fd)
                    raise PathRefused(f"{self.shown}: resolves into .git, which is off limits")
                return name, fd
            self._enter(name, fd)
        raise PathRefused(f"{self.shown}: empty path")


def open_beneath(root: Path, path: str, *, directory: bool = False) -> int:
    """A descriptor of the file (or, with ``directory``, the directory) ``path`` names inside ``root``,
    opened without ever following a link the kernel resolves. The caller closes it."""
    parts = _check(path)
    with _Walk(root.resolve(strict=True), path) as walk:
        _, fd = walk.resolve(list(parts), final="dir" if directory else "file")
    assert fd is not None
    return fd


@contextlib.contextmanager
def parent_beneath(root: Path, path: str, *, create: bool = True) -> Iterator[tuple[int, str]]:
    """``(descriptor of the parent directory, final name)`` for writing ``path`` inside ``root``: parents
    are made as needed, the final name is refused if it is a symlink or not a regular file."""
    parts = _check(path)
    with _Walk(root.resolve(strict=True), path) as walk:
        name, _ = walk.resolve(list(parts), final="parent", create=create)
        yield walk.fd, name


def walk_beneath(root: Path, path: str) -> Iterator[tuple[str, bool]]:
    """``(path relative to root, is a symlink)`` for every file and symlink under the directory ``path``,
    sorted per directory, files first; never follows a symlink, never enters anything named like ``.git``."""
    top = open_beneath(root, path, directory=True)
    prefix = PurePosixPath(path)
    yield from _walk_fd(top, prefix)


def _walk_fd(fd: int, prefix: PurePosixPath) -> Iterator[tuple[str, bool]]:
    try:
        with os.scandir(fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        dirs: list[str] = []
        files: list[tuple[str, bool]] = []
        for entry in entries:
            if is_dot_git(entry.name):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    dirs.append(entry.name)
                else:
                    files.append((entry.name, entry.is_symlink()))
            except OSError:
                continue
        for name, link in files:
            yield (prefix / name).as_posix(), link
        for name in dirs:
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue  # gone, or swapped for a symlink meanwhile: never followed
            yield from _walk_fd(sub, prefix / name)
    finally:
        os.close(fd)


_GLOB_TOKEN = re.compile(r"\*\*/|\*\*|\*|\?|\[!?[^]]+\]|.", re.DOTALL)

_GLOB_MAP = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}


def glob_regex(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` stay within one path component, ``**`` spans directories, ``[...]`` is a class."""

    def token(tok: str) -> str:
        if tok in _GLOB_MAP:
            return _GLOB_MAP[tok]
        if len(tok) > 2 and tok[0] == "[":
            return "[" + ("^" + tok[2:-1] if tok[1] == "!" else tok[1:-1]).replace("\\", "\\\\") + "]"
        return re.escape(tok)

    return re.compile("".join(token(t) for t in _GLOB_TOKEN.findall(pattern)) + r"\Z")
