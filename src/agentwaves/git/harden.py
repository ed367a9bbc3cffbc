"""How :func:`agentwaves.git.ops.run_git` hardens every git call: fixed ``-c`` options, neutralised
drivers, ``--no-ext-diff --no-textconv`` on diff commands and a fixed environment (see ``docs/git.md``)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

from agentwaves.redact import is_secret_name

HARDENED_CONFIG = (
    "core.hooksPath=/dev/null",  # no hook runs, whatever core.hooksPath (e.g. a relative .husky) says
    "core.fsmonitor=false",
    "core.pager=cat",
    "submodule.recurse=false",
    "diff.ignoreSubmodules=dirty",  # never starts `git status` inside a nested repository
    "status.submoduleSummary=false",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
)
"""``-c`` options of every git call agentwaves makes; they also reach the git processes git itself starts."""

KEPT_GIT_ENV = re.compile(r"GIT_(AUTHOR|COMMITTER)_(NAME|EMAIL|DATE)|GIT_CONFIG_(NOSYSTEM|GLOBAL|SYSTEM)")
"""The only ``GIT_*`` variables of the user's environment git sees (identity and where config lives)."""

_DIFF_COMMANDS = frozenset({"diff", "log", "show", "format-patch"})
_DRIVER_KEY = re.compile(r"^(filter|diff|merge)\.(.+)\.(clean|smudge|process|textconv|command|driver)$")
_driver_cache: dict[str, tuple[str, ...]] = {}
_driver_lock = threading.Lock()


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The fixed environment of every git call: the user's, without secrets and foreign ``GIT_*``.

    Filtered once per version of the process's environment (every git call asks: ~0.15 ms each)."""
    global _env_cache
    current = tuple(os.environ.items())
    cached = _env_cache
    if cached is None or cached[0] != current:
        env = {
            k: v
            for k, v in current
            if not is_secret_name(k) and (not k.startswith("GIT_") or KEPT_GIT_ENV.fullmatch(k))
        }
        env.update(GIT_TERMINAL_PROMPT="0", GIT_NO_REPLACE_OBJECTS="1")
        cached = _env_cache = (current, env)
    return {**cached[1], **(extra or {})}


_env_cache: tuple[tuple[tuple[str, str], ...], dict[str, str]] | None = None


def stamp(path: str | Path) -> tuple[int, int, int] | None:
    """A file's version as (mtime, inode, size), None if absent: git rewrites config files by rename,
    so a change gives a new inode even within one mtime tick."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


def config_key(cwd: Path) -> str:
    """The repository's common git directory and its config file's mtime, found without running git
    (``.git`` directory, or a linked worktree's ``.git`` file and ``commondir``); else ``cwd`` itself."""
    here = Path(cwd)
    for d in (here, *here.parents):
        dotgit = d / ".git"
        try:
            if dotgit.is_dir():
                common = dotgit
            elif dotgit.is_file():
                gitdir = d / dotgit.read_text().strip().removeprefix("gitdir:").strip()
                commondir = gitdir / "commondir"
                common = gitdir / commondir.read_text().strip() if commondir.is_file() else gitdir
            else:
                continue
        except OSError:
            break
        version = stamp(common / "config")
        if version is None:
            break
        return f"{os.path.realpath(common)}\0" + "\0".join(map(str, version))
    return str(cwd)


def _driver_overrides(cwd: Path) -> tuple[str, ...]:
    """``-c`` pairs that neutralise every filter, diff and merge driver the config seen from ``cwd`` defines.

    Filters become no-ops (empty commands, not required); a custom merge driver becomes git's own text
    merge (``git merge-file``); textconv and external diff are switched off per command instead. Cached per
    repository and version of its config file (every worktree of a repository shares it; the sandbox
    cannot write it)."""
    key = config_key(cwd)
    with _driver_lock:
        cached = _driver_cache.get(key)
    if cached is not None:
        return cached
    res = spawn(cwd, ("config", "--null", "--get-regexp", r"^(filter|diff|merge)\."), None, None)
    pairs: list[str] = []
    seen: set[tuple[str, str]] = set()
    for record in res.stdout.split("\0") if res.returncode == 0 else []:
        match = _DRIVER_KEY.match(record.split("\n", 1)[0])
        if match is None or (match[1], match[2]) in seen:
            continue
        kind, name = match[1], match[2]
        seen.add((kind, name))
        if kind == "filter":
            pairs += [f"filter.{name}.clean=", f"filter.{name}.smudge=", f"filter.{name}.process="]
            pairs.append(f"filter.{name}.required=false")
        elif kind == "merge":
            pairs.append(f"merge.{name}.driver=git merge-file --marker-size=%L %A %O %B")
    overrides = tuple(opt for pair in pairs for opt in ("-c", pair))
    if res.returncode in (0, 1):  # 1: nothing defined; anything else (no such directory yet): ask again
        with _driver_lock:
            _driver_cache[key] = overrides
    return overrides


def spawn(
    cwd: Path, args: tuple[str, ...], input: str | None, env: Mapping[str, str] | None
) -> subprocess.CompletedProcess[str]:
    hardened = [opt for pair in HARDENED_CONFIG for opt in ("-c", pair)]
    return subprocess.run(
        ["git", *hardened, *args],
        cwd=cwd,
        input=input,
        env=git_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def hardened_args(cwd: Path, args: tuple[str, ...]) -> tuple[str, ...]:
    """``args`` with the driver overrides first and ``--no-ext-diff --no-textconv`` after a diff command."""
    i = 0
    while i < len(args) and args[i] in ("-c", "-C"):
        i += 2
    if i < len(args) and args[i] in _DIFF_COMMANDS:
        args = (*args[: i + 1], "--no-ext-diff", "--no-textconv", *args[i + 1 :])
    return (*_driver_overrides(cwd), *args)
