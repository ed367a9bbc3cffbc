"""Where the implementer's ``run`` commands execute: the sandboxes.

A :class:`Sandbox` turns ``argv`` into the argv that runs it confined. :class:`BwrapSandbox` uses bubblewrap:
the whole file system read-only, the worktree writable, a private ``/tmp``, ``/run`` and runtime dir, every
host unix socket covered, no network (unless asked for), its own PID and user namespaces. :class:`NoSandbox`
runs commands as they are (``run`` can then write anywhere the user can).
The process runner (timeouts, output caps, limits, cleanup) is :mod:`agentwaves.sandbox.proc`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from agentwaves.errors import UsageError

"""Environment variable set to a fresh id for every command, so stray processes can be found and killed."""

SANDBOX_UID = 65534
"""The uid and gid (``nobody``) commands run as inside bubblewrap's user namespace."""

CREDENTIAL_PATHS = (
    *(".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".config", ".netrc", ".git-credentials"),
    *(".gitconfig", ".pypirc", ".npmrc", ".cargo/credentials", ".cargo/credentials.toml", ".m2/settings.xml"),
    *(".password-store", ".local/share/keyrings", ".anthropic", ".claude"),
)
"""Paths under the user's home that bubblewrap hides (empty tmpfs or /dev/null): keys, tokens, configs."""

MISSING_BWRAP = "bubblewrap (bwrap) is not installed: apt-get install bubblewrap, or use --sandbox none"


@runtime_checkable
class Sandbox(Protocol):
    """Wraps a command so that it runs confined to its working directory."""

    name: str

    def wrap(
        self,
        argv: list[str],
        cwd: Path,
        *,
        writable: Sequence[Path] = (),
        readonly: Sequence[Path] = (),
        network: bool = False,
    ) -> list[str]:
        """The argv that runs ``argv`` in ``cwd``; ``writable`` are extra directories it may write,
        ``readonly`` directories it must see even where the sandbox hides the host (a venv under /tmp),
        ``network`` keeps the host's network."""
        ...


class NoSandbox:
    """No confinement: the command runs as the user, with the user's file system and network."""

    name = "none"

    def wrap(
        self,
        argv: list[str],
        cwd: Path,
        *,
        writable: Sequence[Path] = (),
        readonly: Sequence[Path] = (),
        network: bool = False,
    ) -> list[str]:
        return list(argv)


class BwrapSandbox:
    """bubblewrap: ``/`` read-only, the worktree (and ``writable``) read-write, private ``/tmp``, no network.

    With ``user_namespace`` the command runs as uid/gid 65534 in a new user namespace (files owned by the
    invoking user appear as its own). The worktree's ``.git`` file or directory is re-bound read-only, and
    the repository's git directory stays readable even when it lives under ``/tmp``, so ``git status`` and
    ``git diff`` work but nothing can be committed.
    """

    name = "bwrap"

    def __init__(self, *, bwrap: str | None = None, user_namespace: bool | None = None) -> None:
        found = bwrap or shutil.which("bwrap")
        if found is None:
            raise UsageError(MISSING_BWRAP)
        self.bwrap = found
        self.user_namespace = probe_bwrap(found, True) if user_namespace is None else user_namespace

    def wrap(
        self,
        argv: list[str],
        cwd: Path,
        *,
        writable: Sequence[Path] = (),
        readonly: Sequence[Path] = (),
        network: bool = False,
    ) -> list[str]:
        cwd = cwd.resolve()
        args = [self.bwrap, "--die-with-parent", "--new-session"]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        if not network:
            args.append("--unshare-net")
        if self.user_namespace:
            args += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for hidden in _runtime_dirs():
            args += ["--tmpfs", str(hidden)]
        for sock in host_sockets():
            args += ["--ro-bind", "/dev/null", sock]
        for secret in _credential_paths():
            args += ["--tmpfs", str(secret)] if secret.is_dir() else ["--ro-bind", "/dev/null", str(secret)]
        for seen in readonly:
            if seen.is_dir():
                args += ["--ro-bind", str(seen), str(seen)]
        for gitdir in _git_dirs(cwd):
            args += ["--ro-bind", str(gitdir), str(gitdir)]
        for extra in writable:
            args += ["--bind", str(extra), str(extra)]
        args += ["--bind", str(cwd), str(cwd)]
        if os.path.lexists(cwd / ".git"):
            args += ["--ro-bind", str(cwd / ".git"), str(cwd / ".git")]
        return [*args, "--chdir", str(cwd), "--", *argv]


_HIDDEN_ROOTS = ("/tmp", "/run", "/var/run", "/dev", "/proc")


def _runtime_dirs() -> list[Path]:
    """``/run`` (and ``/var/run`` when it is not a link to it) and the user's runtime dir: sockets live there
    (``docker.sock``, the session bus). They are replaced by empty tmpfs inside the sandbox."""
    found = [Path("/run")]
    if not Path("/var/run").is_symlink():
        found.append(Path("/var/run"))
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and not any(Path(runtime).is_relative_to(d) for d in _HIDDEN_ROOTS):
        found.append(Path(runtime))
    return [d for d in found if d.is_dir() and not d.is_symlink()]


def host_sockets() -> list[str]:
    """Every path-named unix socket bound on this host (``/proc/net/unix``) outside the hidden directories:
    a read-only bind still lets a process connect to one, so each is covered with ``/dev/null``."""
    try:
        lines = Path("/proc/net/unix").read_text(errors="replace").splitlines()[1:]
    except OSError:
        return []
    paths = {fields[7] for fields in (ln.split(None, 7) for ln in lines) if len(fields) == 8}
    runtime = os.environ.get("XDG_RUNTIME_DIR") or "/run"
    hidden = (*_HIDDEN_ROOTS, runtime)
    found = []
    for path in sorted(p for p in paths if p.startswith("/")):
        if any(Path(path).is_relative_to(d) for d in hidden):
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                found.append(path)
    return found


def _credential_paths() -> list[Path]:
    """Well-known credential files and directories in the user's home, hidden inside the sandbox."""
    homes = {os.environ.get("HOME", ""), pwd.getpwuid(os.getuid()).pw_dir} - {"", "/"}
    found = [Path(home, name) for home in sorted(homes) for name in CREDENTIAL_PATHS]
    return [p for p in found if os.path.lexists(p) and not p.is_symlink()]


def _git_dirs(worktree: Path) -> list[Path]:
    """The git directory and common directory a linked worktree's ``.git`` file points to."""
    dotgit = worktree / ".git"
    if dotgit.is_symlink() or not dotgit.is_file():
        return []
    try:
        text = dotgit.read_text(errors="replace").strip()
    except OSError:
        return []
    if not text.startswith("gitdir:"):
        return []
    gitdir = (worktree / text.removeprefix("gitdir:").strip()).resolve()
    dirs = [gitdir]
    with contextlib.suppress(OSError):
        dirs.insert(0, (gitdir / (gitdir / "commondir").read_text().strip()).resolve())
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


# ----------------------------------------------------------------------------------- probing and choice


@functools.cache
def _probe(bwrap: str, user_namespace: bool) -> tuple[bool, str]:
    """Whether bwrap can start a sandbox here (cached per process), and why not."""
    argv = [bwrap, "--unshare-pid", "--unshare-net", "--die-with-parent"]
    if user_namespace:
        argv += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    argv += ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return done.returncode == 0, done.stderr.strip() or f"exit code {done.returncode}"


def probe_bwrap(bwrap: str, user_namespace: bool = False) -> bool:
    """Whether ``bwrap`` works on this machine, with or without a user namespace (cached per process)."""
    return _probe(bwrap, user_namespace)[0]


def resolve_sandbox(mode: str) -> tuple[Sandbox, str | None]:
    """The sandbox for ``--sandbox MODE`` (``auto``, ``bwrap`` or ``none``) and a warning to print once."""
    if mode not in ("auto", "bwrap", "none"):
        raise UsageError(f"unknown sandbox mode {mode!r}: use auto, bwrap or none")
    unsandboxed = "commands run without a sandbox: `run` can read, write and delete anything your user can"
    if mode == "none":
        return NoSandbox(), f"{unsandboxed}, and use the network (--sandbox none)"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        if mode == "bwrap":
            raise UsageError(MISSING_BWRAP)
        return NoSandbox(), f"{unsandboxed}; install bubblewrap (apt-get install bubblewrap) to confine them"
    works, why = _probe(bwrap, False)
    if not works:
        if mode == "bwrap":
            raise UsageError(f"bubblewrap (bwrap) does not work here ({why}); use --sandbox none")
        return NoSandbox(), f"{unsandboxed}; bubblewrap is installed but does not work here ({why})"
    if probe_bwrap(bwrap, True):
        return BwrapSandbox(bwrap=bwrap, user_namespace=True), None
    warning = "sandbox without a user namespace (unavailable here): commands keep your uid inside bubblewrap"
    return BwrapSandbox(bwrap=bwrap, user_namespace=False), warning


# ----------------------------------------------------------------------------------- resource limits


# ----------------------------------------------------------------------------------- the runner
