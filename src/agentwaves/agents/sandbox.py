"""Where the implementer's ``run`` commands execute: the sandboxes and the bounded process runner.

A :class:`Sandbox` turns ``argv`` into the argv that runs it confined. :class:`BwrapSandbox` uses bubblewrap:
the whole file system read-only, the worktree writable, a private ``/tmp``, no network, its own PID and user
namespaces. :class:`NoSandbox` runs commands as they are (``run`` can then write anywhere the user can).

:func:`run_sandboxed` starts one command with a hard timeout, a capped output read incrementally, a
minimal environment given by the caller, stdin from ``/dev/null``, resource limits (processes, file size,
address space) and its own session; afterwards every process it started is killed, whether it finished,
timed out or printed too much. See ``docs/security.md``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from agentwaves.errors import UsageError

MARKER_VAR = "AGENTWAVES_RUN_ID"
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

    def wrap(self, argv: list[str], cwd: Path, *, writable: Sequence[Path] = ()) -> list[str]:
        """The argv that runs ``argv`` in ``cwd``; ``writable`` are extra directories it may write."""
        ...


class NoSandbox:
    """No confinement: the command runs as the user, with the user's file system and network."""

    name = "none"

    def wrap(self, argv: list[str], cwd: Path, *, writable: Sequence[Path] = ()) -> list[str]:
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

    def wrap(self, argv: list[str], cwd: Path, *, writable: Sequence[Path] = ()) -> list[str]:
        cwd = cwd.resolve()
        args = [self.bwrap, "--die-with-parent", "--new-session"]
        args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        if self.user_namespace:
            args += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for secret in _credential_paths():
            args += ["--tmpfs", str(secret)] if secret.is_dir() else ["--ro-bind", "/dev/null", str(secret)]
        for gitdir in _git_dirs(cwd):
            args += ["--ro-bind", str(gitdir), str(gitdir)]
        for extra in writable:
            args += ["--bind", str(extra), str(extra)]
        args += ["--bind", str(cwd), str(cwd)]
        if os.path.lexists(cwd / ".git"):
            args += ["--ro-bind", str(cwd / ".git"), str(cwd / ".git")]
        return [*args, "--chdir", str(cwd), "--", *argv]


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


@dataclass(frozen=True)
class Limits:
    """Per-command limits. ``max_output_bytes`` is the hard cap: a command printing more is killed."""

    max_processes: int = 512
    max_file_size: int = 1 << 30
    max_address_space: int | None = 8 << 30
    max_output_bytes: int = 8_000_000


# Runs before the command (outside the sandbox): joins the pids cgroup, sets rlimits, then execs argv.
_EXEC_HELPER = """\
import json, os, resource, sys
cfg = json.loads(sys.argv[1])
if cfg["cgroup"]:
    try:
        with open(cfg["cgroup"], "w") as f:
            f.write(str(os.getpid()))
    except OSError as exc:
        print(f"agentwaves: could not join the process cgroup: {exc}", file=sys.stderr)
for name, value in cfg["rlimits"].items():
    which = getattr(resource, name)
    hard = resource.getrlimit(which)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    print(f"agentwaves: cannot run {sys.argv[2]}: {exc}", file=sys.stderr)
    sys.exit(127)
"""


def _nproc_limit(max_processes: int) -> int:
    """RLIMIT_NPROC counts all processes of the real uid: allow what the user already runs plus ours.

    Root ignores RLIMIT_NPROC (even inside a user namespace); the pids cgroup covers root.
    """
    if os.getuid() == 0:
        return max_processes
    mine = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("Uid:"):
                    mine += line.split()[1] == str(os.getuid())
                    break
    return mine + max_processes


@functools.cache
def _pids_cgroup_base() -> Path | None:
    """The writable pids cgroup (v1 or v2) this process lives in, if any (cached per process)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if "pids" in controllers.split(","):
            base = Path("/sys/fs/cgroup/pids") / rel.lstrip("/")
        elif controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            base = Path("/sys/fs/cgroup") / rel.lstrip("/")
            with contextlib.suppress(OSError):
                if "pids" not in (base / "cgroup.subtree_control").read_text().split():
                    continue
        else:
            continue
        if (base / "cgroup.procs").exists() and os.access(base, os.W_OK):
            return base
    return None


class _PidsCgroup:
    """A throw-away pids cgroup for one command: caps its process count and finds every process it made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.procs = path / "cgroup.procs"

    @classmethod
    def create(cls, max_pids: int) -> _PidsCgroup | None:
        base = _pids_cgroup_base()
        if base is None:
            return None
        path = base / f"agentwaves-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_pids))
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls(path)

    def kill_all(self, budget: float = 5.0) -> None:
        end = time.monotonic() + budget
        while time.monotonic() < end:
            try:
                pids = [int(p) for p in self.procs.read_text().split()]
            except (OSError, ValueError):
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                self.kill_all(0.1)
                time.sleep(0.02)


def _kill_marked(marker: str, budget: float = 5.0) -> None:
    """SIGKILL every process whose environment carries ``MARKER_VAR=marker``, until none is left."""
    needle = f"{MARKER_VAR}={marker}".encode()
    end = time.monotonic() + budget
    while time.monotonic() < end:
        found = False
        for pid in (int(name) for name in os.listdir("/proc") if name.isdigit()):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    environ = f.read()
            except OSError:
                continue
            if pid != os.getpid() and needle in environ.split(b"\0"):
                found = True
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if not found:
            return
        time.sleep(0.01)


# ----------------------------------------------------------------------------------- the runner


@dataclass
class RunResult:
    """What a command did. ``exit_code`` is None when it was killed (timeout or too much output)."""

    exit_code: int | None
    output: str
    omitted_bytes: int
    timed_out: bool
    output_limit_hit: bool
    duration: float


def run_sandboxed(
    command: str,
    cwd: Path,
    *,
    sandbox: Sandbox,
    env: dict[str, str],
    timeout: float,
    max_output: int,
    writable: Sequence[Path] = (),
    limits: Limits | None = None,
) -> RunResult:
    """Run ``bash -c command`` in ``cwd`` under ``sandbox`` with exactly ``env``; never leaves a process.

    Output (stdout and stderr merged) is read as it comes; only the first ``max_output`` characters are
    kept and the command is killed once it printed more than ``limits.max_output_bytes``.
    """
    limits = limits or Limits()
    marker = uuid.uuid4().hex
    cgroup = _PidsCgroup.create(limits.max_processes)
    rlimits: dict[str, int] = {"RLIMIT_NPROC": _nproc_limit(limits.max_processes), "RLIMIT_CORE": 0}
    rlimits["RLIMIT_FSIZE"] = limits.max_file_size
    if limits.max_address_space is not None:
        rlimits["RLIMIT_AS"] = limits.max_address_space
    config = json.dumps({"cgroup": str(cgroup.procs) if cgroup else None, "rlimits": rlimits})
    inner = sandbox.wrap(["bash", "-c", command], cwd, writable=writable)
    argv = [sys.executable, "-I", "-S", "-c", _EXEC_HELPER, config, *inner]
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**env, MARKER_VAR: marker},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
    )
    try:
        keep, total, status = _pump(proc, start + timeout, max_output * 4, limits.max_output_bytes)
    finally:
        _kill_everything(proc, marker, cgroup)
    shown = keep.decode("utf-8", errors="replace")[:max_output]
    return RunResult(
        exit_code=proc.returncode if status == "exited" else None,
        output=shown,
        omitted_bytes=max(0, total - len(shown.encode("utf-8", errors="replace"))),
        timed_out=status == "timeout",
        output_limit_hit=status == "limit",
        duration=time.monotonic() - start,
    )


def _pump(
    proc: subprocess.Popen[bytes], deadline: float, keep_bytes: int, cap: int
) -> tuple[bytearray, int, str]:
    """Read output until the command exits (``exited``), the ``timeout`` or the output ``limit``.

    Keeps the first ``keep_bytes`` and counts the rest. Once the command itself has exited, output of
    processes it left behind is read for a short grace period only.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    keep = bytearray()
    total = 0
    grace_end: float | None = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            return keep, total, "timeout"
        if grace_end is not None and now >= grace_end:
            return keep, total, "exited"
        if poller.poll(min(deadline - now, 0.05) * 1000):
            chunk = os.read(fd, 65536)
            if not chunk:
                return keep, total, "exited" if _wait_unreaped(proc.pid, deadline) else "timeout"
            total += len(chunk)
            keep += chunk[: max(0, keep_bytes - len(keep))]
            if total > cap:
                return keep, total, "limit"
        if grace_end is None and _exited(proc.pid):
            grace_end = time.monotonic() + 0.2


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited, without reaping it."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None


def _wait_unreaped(pid: int, deadline: float) -> bool:
    """Wait until ``pid`` exits but leave it a zombie, so its process group id cannot be reused yet."""
    delay = 0.001
    while time.monotonic() < deadline:
        if _exited(pid):
            return True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return False


def _kill_everything(proc: subprocess.Popen[bytes], marker: str, cgroup: _PidsCgroup | None) -> None:
    """Kill the command's process group (its leader is not reaped yet), its cgroup and marked strays."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    if cgroup is not None:
        cgroup.kill_all()
    _kill_marked(marker)
    if proc.stdout is not None:
        proc.stdout.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed processes do not linger
        proc.kill()
        proc.wait()
    if cgroup is not None:
        cgroup.remove()
