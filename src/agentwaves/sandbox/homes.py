"""Private HOME directories of sandboxed commands: made per owner process, removed after use, and swept on
the next start when a crash (``kill -9``) left some behind."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

PREFIX = "agentwaves-home-"
_OWNED = re.compile(rf"^{PREFIX}(\d+)-")


def make_home() -> Path:
    """A fresh private HOME in the temporary directory, named after this process (for the sweep)."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def remove_home(path: Path) -> None:
    """Remove ``path`` for good, even where a sandboxed command took away its own permissions."""

    def retry(func: object, name: str, exc: object) -> None:
        with contextlib.suppress(OSError):
            parent = os.path.dirname(name)
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, stat.S_IRWXU)
                shutil.rmtree(name, ignore_errors=True)
            else:
                os.unlink(name)

    shutil.rmtree(path, onerror=retry)
    with contextlib.suppress(OSError):
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still exists (a reused pid only postpones the sweep of its homes; never a live one)."""
    return os.path.exists(f"/proc/{pid}")


def sweep_stale_homes(tmp: Path | None = None) -> list[Path]:
    """Remove the private HOMEs whose owner process is gone; return what was removed."""
    base = Path(tmp or tempfile.gettempdir())
    removed: list[Path] = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in names:
        match = _OWNED.match(name)
        if match is None or _alive(int(match[1])):
            continue
        path = base / name
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(path).st_mode):
                remove_home(path)
                removed.append(path)
    return removed
