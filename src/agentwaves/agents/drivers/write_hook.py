"""Live write leases for Claude Code: a ``PreToolUse`` hook that asks agentwaves before each file write.

While a task runs with a ``write_guard`` (live leases), :class:`WriteHook` serves a unix socket from a
thread of the agentwaves process. ``claude`` gets a ``PreToolUse`` hook (``--settings``, matcher
``Write|Edit|MultiEdit|NotebookEdit``) that runs :data:`HOOK_SCRIPT` with the jail's python: it sends the
hook's input (the tool and its ``file_path``) over the socket and prints the answer. The server turns the
path into one relative to the worktree and asks the guard; a refusal comes back as
``permissionDecision: deny`` with the refusal text as the reason, which Claude Code gives the model as the
tool's error (and the guard reports the ``write_refused`` event).

The socket and the script live in a directory of their own, bound read-only into the agent's jail (the
agent cannot replace the hook). The hook fails open: when the channel is down (agentwaves stopped
serving, a timeout), the write goes ahead and the end-of-task check of the run layer still catches a
write to a leased path before the task's commit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentwaves.sandbox.proc import hidden_by_sandbox

MATCHER = "Write|Edit|MultiEdit|NotebookEdit"
TIMEOUT = 30  # seconds: the hook's own limit in Claude Code, and the script's on the socket
MAX_INPUT = 1 << 16  # bytes of one question read (the script sends only the path and cwd)

# Standard library only, run with ``python -I``: the path and cwd of the hook's input (stdin) go to the
# socket (argv[1]), the answer (the hook's JSON output, or nothing to allow) goes to stdout. Fails open.
HOOK_SCRIPT = """import json, socket, sys
try:
    event = json.load(sys.stdin)
    tool = event.get("tool_input") or {{}}
    paths = {{k: tool.get(k) for k in ("file_path", "notebook_path")}}
    ask = {{"cwd": event.get("cwd"), "tool_input": paths}}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout({timeout})
    s.connect(sys.argv[1])
    s.sendall(json.dumps(ask).encode())
    s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
except (OSError, ValueError, AttributeError):
    sys.exit(0)
sys.stdout.buffer.write(out)
"""


class WriteHook:
    """The socket server and hook files of one ``claude`` process (a context manager)."""

    def __init__(self, worktree: Path, guard: Callable[[str], str | None], python: str | None = None) -> None:
        self.worktree = Path(os.path.realpath(worktree))
        self.guard = guard
        # the interpreter itself, not a venv's link to it: with -I -S it needs only its own prefix, and a
        # venv under /tmp is not in the jail (its /tmp is private)
        self.python = python or os.path.realpath(sys.executable)
        self.dir = Path("/")
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ what claude gets

    @property
    def jail_paths(self) -> list[Path]:
        """What the jail must bind read-only for the hook to run: its directory, and the interpreter's
        prefix when it lies where the jail replaces the host (a private /tmp)."""
        prefix = Path(os.path.realpath(sys.base_prefix))
        return [self.dir, *([prefix] if hidden_by_sandbox(prefix) else [])]

    @property
    def socket_path(self) -> Path:
        return self.dir / "s"

    def settings(self) -> dict[str, Any]:
        """The ``hooks`` entry of claude's ``--settings``."""
        argv = (self.python, "-I", "-S", str(self.dir / "hook.py"), str(self.socket_path))
        command = " ".join(shlex.quote(a) for a in argv)
        hook = {"type": "command", "command": command, "timeout": TIMEOUT}
        return {"PreToolUse": [{"matcher": MATCHER, "hooks": [hook]}]}

    # ------------------------------------------------------------------ serving

    def __enter__(self) -> WriteHook:
        self.dir = Path(tempfile.mkdtemp(prefix="agentwaves-hook-"))
        if len(str(self.socket_path)) > 100:  # a unix socket's path is short (108 bytes on Linux)
            os.rmdir(self.dir)
            self.dir = Path(tempfile.mkdtemp(prefix="agentwaves-hook-", dir="/tmp"))
        script = self.dir / "hook.py"
        script.write_text(HOOK_SCRIPT.format(timeout=TIMEOUT))
        script.chmod(0o444)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.socket_path))
        server.listen(16)
        server.settimeout(0.2)
        self._server = server
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="agentwaves-write-hook", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._server is not None:
            self._server.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _serve(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(Exception):
                # any failure answers nothing (fail open): the end-of-task check is the backstop
                conn.settimeout(TIMEOUT)
                conn.sendall(self.answer(_read_all(conn)))

    def answer(self, data: bytes) -> bytes:
        """The hook's stdout for one hook input: a deny decision, or nothing (the write may go ahead)."""
        try:
            event = json.loads(data or b"{}")
        except ValueError:
            return b""
        rel = self.relative(event) if isinstance(event, dict) else None
        refusal = self.guard(rel) if rel is not None else None
        if refusal is None:
            return b""
        decision = {"hookEventName": "PreToolUse", "permissionDecision": "deny"}
        return json.dumps({"hookSpecificOutput": {**decision, "permissionDecisionReason": refusal}}).encode()

    def relative(self, event: dict[str, Any]) -> str | None:
        """The written path relative to the worktree, or None (no path, or one outside the worktree:
        the jail decides those)."""
        tool_input = event.get("tool_input")
        if not isinstance(tool_input, dict):
            return None
        raw = tool_input.get("file_path") or tool_input.get("notebook_path")
        if not isinstance(raw, str) or not raw:
            return None
        cwd = event.get("cwd")
        base = cwd if isinstance(cwd, str) and cwd else str(self.worktree)
        full = Path(os.path.realpath(os.path.join(base, raw)))
        try:
            rel = full.relative_to(self.worktree).as_posix()
        except ValueError:
            return None
        return None if rel in ("", ".") or rel == ".git" or rel.startswith(".git/") else rel


def _read_all(conn: socket.socket) -> bytes:
    data = b""
    while len(data) < MAX_INPUT:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
