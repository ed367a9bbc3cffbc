"""Copying the user's untracked files (``copy_files``) into a worktree without ever following a link there.

A worktree holds agent-committed content: ``config -> /elsewhere`` must not make agentwaves delete or write
anything outside it. Every destination is reached component by component from the worktree's root with
``O_NOFOLLOW`` (a symlink or file where a directory is needed fails the copy with :class:`CopyRefused`), and
files are created, replaced or removed by name in the directory descriptor held, never through a path.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from pathlib import Path, PurePosixPath

from agentwaves.errors import AgentwavesError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class CopyRefused(AgentwavesError):
    """A ``copy_files`` destination in the worktree goes through a symlink or a file."""


def _parent(root: Path, rel: PurePosixPath) -> int:
    """A descriptor of ``rel``'s parent under ``root``, made as needed, never through a link."""
    fd = os.open(root, _DIR)
    try:
        for i, part in enumerate(rel.parts[:-1]):
            try:
                nxt = os.open(part, _DIR, dir_fd=fd)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
                nxt = os.open(part, _DIR, dir_fd=fd)
            except OSError:
                where = PurePosixPath(*rel.parts[: i + 1])
                raise CopyRefused(
                    f"copy_files: cannot copy {rel} into {root.name}: {where} is a symbolic link or a file "
                    "in the worktree (never followed)"
                ) from None
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def copy_in(src: Path, root: Path, rel: PurePosixPath) -> None:
    """Copy one file or symlink ``src`` to ``root/rel`` unless it already has the same size and mtime."""
    parent = _parent(root, rel)
    name = rel.name
    try:
        s = src.lstat()
        try:
            d = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            d = None
        if d is not None and stat.S_ISDIR(d.st_mode):
            shutil.rmtree(name, dir_fd=parent)  # symlink-attack resistant, never leaves the directory
        elif (
            d is not None
            and stat.S_ISREG(d.st_mode)
            and stat.S_ISREG(s.st_mode)
            and (s.st_size, s.st_mtime_ns) == (d.st_size, d.st_mtime_ns)
        ):
            return
        tmp = f".{name}.{secrets.token_hex(4)}.agentwaves-tmp"
        if stat.S_ISLNK(s.st_mode):
            os.symlink(os.readlink(src), tmp, dir_fd=parent)
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            out = os.open(tmp, flags, 0o600, dir_fd=parent)
            try:
                with open(src, "rb") as f_in, os.fdopen(out, "wb") as f_out:
                    shutil.copyfileobj(f_in, f_out)
                    f_out.flush()
                    os.fchmod(f_out.fileno(), stat.S_IMODE(s.st_mode) & ~0o6000)
                    os.utime(f_out.fileno(), ns=(s.st_atime_ns, s.st_mtime_ns))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=parent)
                raise
        os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
    finally:
        os.close(parent)


def sync_dir(src: Path, root: Path, rel: PurePosixPath) -> None:
    """Copy the directory ``src`` (never entering its symlinks) to ``root/rel``."""
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        out = rel / here.relative_to(src).as_posix() if here != src else rel
        for d in list(dirnames):
            if (here / d).is_symlink():
                dirnames.remove(d)
                filenames.append(d)
        if not filenames and not dirnames:
            os.close(_parent(root, out / "x"))  # an empty directory is still made
        for f in filenames:
            copy_in(here / f, root, out / f)
