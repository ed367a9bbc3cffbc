"""A preloaded ``agentwaves`` for the crash sweeps: each run is a fresh process, without the start-up.

The sweeps run ``agentwaves`` twice per crash point (the run killed at point n, then ``resume``); about
half of each short run was Python importing the package. ``python -m tests.e2e.forkserver`` reads one
request a line on stdin (JSON: ``argv``, ``env``, ``cwd``, ``out``, ``err``) and forks a child that becomes
the CLI process; after a child that finished, it imports what that child had imported, so later children
start with the modules a run needs already loaded (only what runs import). The child's environment,
working directory and stdin/stdout/stderr are the request's, it runs ``agentwaves.cli.app.main(argv)`` and
exits as the interpreter would (non-daemon threads joined, ``atexit`` run). The server answers one JSON
line, ``{"returncode": N}`` (``-9`` when the child was SIGKILLed at a crash point, as :mod:`subprocess`
reports it). The child is a separate process with its own pid, killed by the real ``kill -9`` of
``AGENTWAVES_CRASH_AT``; what it leaves on disk is what the next run reads.
"""

from __future__ import annotations

import atexit
import importlib
import json
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

TIMEOUT = 120  # seconds a run may take: then SIGALRM ends it (returncode -14), as subprocess's timeout would


def preload(names: list[str]) -> None:
    """Import the modules a finished child had imported (Ray's excepted: a forked Ray client is unsafe)."""
    for name in names:
        if name not in sys.modules and not name.startswith(("ray", "__main__")):
            with suppress(Exception):
                importlib.import_module(name)


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become ``agentwaves ARGV`` and exit with its code."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        stdin = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for fd, target in ((stdin, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        sys.argv = ["agentwaves", *request["argv"]]
        signal.alarm(request.get("timeout", TIMEOUT))
        from agentwaves.cli.app import main

        try:
            main(request["argv"])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        threading._shutdown()  # type: ignore[attr-defined]  # what the interpreter does at exit
        atexit._run_exitfuncs()
        Path(request["out"] + ".modules").write_text("\n".join(sys.modules))
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):
                stream.flush()
        os._exit(code)


def serve() -> None:
    from agentwaves.cli.app import main  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        assert threading.active_count() == 1, "fork with threads running"
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)
        learned = Path(request["out"] + ".modules")
        if learned.exists():
            preload(learned.read_text().splitlines())
            learned.unlink()


class ForkServer:
    """The test's side: ``run(argv, env)`` is ``subprocess.run([python, -m, agentwaves, *argv])``, from a
    preloaded server; one run at a time per server (use one per thread)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self._n = 0
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def run(
        self, argv: list[str], env: dict[str, str], timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Raises :class:`subprocess.TimeoutExpired` as ``subprocess.run(timeout=...)`` would."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._n += 1
        out, err = self.scratch / f"{self._n}.out", self.scratch / f"{self._n}.err"
        request = {"argv": argv, "env": env, "cwd": os.getcwd(), "out": str(out), "err": str(err)}
        request["timeout"] = max(1, math.ceil(timeout))
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"the fork server exited ({self.proc.wait()})")
        code = json.loads(reply)["returncode"]
        stdout, stderr = out.read_text(), err.read_text()
        out.unlink()
        err.unlink()
        if code == -signal.SIGALRM:
            raise subprocess.TimeoutExpired(["agentwaves", *argv], timeout, stdout, stderr)
        return subprocess.CompletedProcess(argv, code, stdout, stderr)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def on_a_server(
    pool: queue.Queue[ForkServer], fn: Callable[[ForkServer, int], str | None]
) -> Callable[[int], str | None]:
    """``fn`` for a thread pool's ``map``: each call borrows a server of ``pool`` for ``fn(server, n)``."""

    def run(n: int) -> str | None:
        server = pool.get()
        try:
            return fn(server, n)
        finally:
            pool.put(server)

    return run


_shared: queue.Queue[ForkServer] = queue.Queue()
_shared_count = 0
_shared_lock = threading.Lock()


def _new_shared() -> ForkServer:
    global _shared_count
    scratch = tempfile.mkdtemp(prefix="aw-forkserver-")
    atexit.register(shutil.rmtree, scratch, True)
    server = ForkServer(Path(scratch))
    atexit.register(server.close)  # runs before the rmtree (atexit is last in, first out)
    with _shared_lock:
        _shared_count += 1
    return server


def shared_servers(n: int) -> queue.Queue[ForkServer]:
    """This process's pool of fork servers (the one :func:`forked` uses), with at least ``n`` servers in
    it: for :func:`on_a_server`. Servers already warm (they preloaded what earlier runs imported) are
    reused, so a test does not pay the first run's imports again on fresh servers."""
    while True:
        with _shared_lock:
            if _shared_count >= n:
                return _shared
        _shared.put(_new_shared())


def forked(
    *args: str | Path, env: dict[str, str], timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``agentwaves ARGS`` with exactly ``env``, from this process's pool of fork servers (one more each time
    every server is busy; they are closed and waited for as this process exits)."""
    try:
        server = _shared.get_nowait()
    except queue.Empty:
        server = _new_shared()
    try:
        return server.run([str(a) for a in args], env, timeout)
    finally:
        _shared.put(server)


if __name__ == "__main__":
    serve()
