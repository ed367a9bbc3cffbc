"""The single gate every agent path goes through: relative to the worktree, no ``..``, nothing named
``.git``, no symlink (of the target or any parent) that leads outside the worktree or into its ``.git``,
and no write under ``.agentwaves/``.
Also the glob matcher of ``list_files``.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path, PurePosixPath

STATE_DIR = ".agentwaves"  # agentwaves' own directory in the user's checkout: never part of a run


class PathRefused(Exception):
    """A path the agent may not touch; the message is shown to the agent."""


def confine(root: Path, path: str, *, write: bool = False) -> Path:
    """The absolute path for ``path`` inside the worktree ``root``, or :class:`PathRefused`.

    Refuses absolute paths, ``..``, any component named ``.git``, and any existing target or parent whose
    real path is outside ``root`` or inside its ``.git``. With ``write``, also refuses an existing symlink
    or non-regular file as the target (content is only ever replaced in regular files).
    """
    if not path or "\0" in path:
        raise PathRefused("path must be a non-empty relative path without NUL characters ('.' is the root)")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise PathRefused(f"{path}: absolute paths are not allowed; use a path relative to the worktree root")
    if ".." in pure.parts:
        raise PathRefused(f"{path}: '..' is not allowed; use a path relative to the worktree root")
    if any(part.lower() == ".git" for part in pure.parts):
        raise PathRefused(f"{path}: .git is off limits; the tool commits for you")
    if write and pure.parts and pure.parts[0].lower() == STATE_DIR:
        raise PathRefused(f"{path}: {STATE_DIR}/ is agentwaves' own directory; nothing may be written there")
    real_root = root.resolve(strict=True)
    target = real_root.joinpath(*pure.parts)
    for depth in range(1, len(pure.parts) + 1):
        current = real_root.joinpath(*pure.parts[:depth])
        if not os.path.lexists(current):
            break
        real = Path(os.path.realpath(current))
        if not real.is_relative_to(real_root):
            raise PathRefused(f"{path}: resolves outside the worktree (through a symlink)")
        if any(part.lower() == ".git" for part in real.relative_to(real_root).parts):
            raise PathRefused(f"{path}: resolves into .git, which is off limits")
        if write and real.relative_to(real_root).parts[:1] == (STATE_DIR,):
            raise PathRefused(f"{path}: resolves into {STATE_DIR}/, agentwaves' own directory")
    if write and os.path.lexists(target):
        mode = os.lstat(target).st_mode
        if stat.S_ISLNK(mode):
            raise PathRefused(f"{path}: is a symbolic link; refusing to write through it")
        if not stat.S_ISREG(mode):
            raise PathRefused(f"{path}: is not a regular file")
    return target


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
