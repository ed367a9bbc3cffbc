"""The bounded process runner behind ``run``: one command with a hard timeout, a capped output read
incrementally, a minimal environment given by the caller, stdin from ``/dev/null``, resource limits
(processes in a pids cgroup, file size, address space) and its own session; afterwards every process it
started is killed, whether it finished, timed out or printed too much. Then no file in the directories it
could write keeps a setuid or setgid bit. See ``docs/security.md``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agentwaves.sandbox.bwrap import Sandbox

MARKER_VAR = "AGENTWAVES_RUN_ID"


class RunningCommands:
    """The commands in progress in this process, so that an interrupt (SIGINT, SIGTERM) can kill them all
    at once: :meth:`kill_all`. Each command's own thread still reaps it and removes its cgroup."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, tuple[subprocess.Popen[bytes], str]] = {}

    def add(self, proc: subprocess.Popen[bytes], marker: str) -> None:
        with self._lock:
            self._live[proc.pid] = (proc, marker)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._live.pop(proc.pid, None)

    def kill_all(self) -> int:
        """SIGKILL every command's process group; returns how many commands there were."""
        with self._lock:
            live = list(self._live.values())
        for proc, _marker in live:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        return len(live)


RUNNING = RunningCommands()  # one per process, like the signal handlers that use it


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
def pids_cgroup_base() -> Path | None:
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
        base = pids_cgroup_base()
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
    network: bool = False,
) -> RunResult:
    """Run ``bash -c command`` in ``cwd`` under ``sandbox`` with exactly ``env``; never leaves a process.

    Output (stdout and stderr merged) is read as it comes; only the first ``max_output`` characters are
    kept and the command is killed once it printed more than ``limits.max_output_bytes``. The directories
    ``env``'s ``PATH`` (and ``VIRTUAL_ENV``) name stay visible, read-only, even where the sandbox hides the
    host (a venv under ``/tmp``). Afterwards :func:`strip_setid` runs on ``cwd`` and ``writable``.
    """
    limits = limits or Limits()
    marker = uuid.uuid4().hex
    cgroup = _PidsCgroup.create(limits.max_processes)
    rlimits: dict[str, int] = {"RLIMIT_NPROC": _nproc_limit(limits.max_processes), "RLIMIT_CORE": 0}
    rlimits["RLIMIT_FSIZE"] = limits.max_file_size
    if limits.max_address_space is not None:
        rlimits["RLIMIT_AS"] = limits.max_address_space
    config = json.dumps({"cgroup": str(cgroup.procs) if cgroup else None, "rlimits": rlimits})
    inner = sandbox.wrap(
        ["bash", "-c", command], cwd, writable=writable, readonly=tool_dirs(env), network=network
    )
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
    RUNNING.add(proc, marker)
    try:
        keep, total, status = _pump(proc, start + timeout, max_output * 4, limits.max_output_bytes)
    finally:
        _kill_everything(proc, marker, cgroup)
        RUNNING.discard(proc)
        for root in (cwd, *writable):
            strip_setid(root)
    shown = keep.decode("utf-8", errors="replace")[:max_output]
    return RunResult(
        exit_code=proc.returncode if status == "exited" else None,
        output=shown,
        omitted_bytes=max(0, total - len(shown.encode("utf-8", errors="replace"))),
        timed_out=status == "timeout",
        output_limit_hit=status == "limit",
        duration=time.monotonic() - start,
    )


_HIDDEN = (Path("/tmp"), Path("/run"), Path("/var/run"))


def hidden_by_sandbox(path: Path) -> bool:
    """Whether the sandbox replaces the folder ``path`` lies in (a private ``/tmp``, ``/run``)."""
    return any(path.is_relative_to(h) and path != h for h in _HIDDEN)


def tool_dirs(env: Mapping[str, str]) -> list[Path]:
    """Directories of the command's tools that the sandbox would hide: the venv (or conda env) and every
    ``PATH`` entry under ``/tmp`` or ``/run`` (a venv's ``bin`` brings its whole venv)."""
    found: list[Path] = []
    for name in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        if env.get(name):
            found.append(Path(env[name]))
    for entry in (env.get("PATH") or "").split(":"):
        if entry.startswith("/"):
            here = Path(entry)
            found.append(here.parent if (here.parent / "pyvenv.cfg").is_file() else here)
    out: list[Path] = []
    for d in dict.fromkeys(found):
        if hidden_by_sandbox(d) and d.is_dir() and not d.is_symlink():
            out.append(d)
    return out


def strip_setid(root: Path) -> None:
    """Clear setuid and setgid bits on every file and directory under ``root`` (never following links).

    A sandboxed root process maps to the host's root: a setuid binary it leaves behind would be a real one."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        if st.st_mode & 0o6000:
            with contextlib.suppress(OSError):
                os.chmod(entry.path, stat.S_IMODE(st.st_mode) & ~0o6000)
        if stat.S_ISDIR(st.st_mode):
            strip_setid(Path(entry.path))


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
