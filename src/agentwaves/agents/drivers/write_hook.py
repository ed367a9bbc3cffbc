"""Live write leases for Claude Code: a ``PreToolUse`` HTTP hook that asks agentwaves before each file write.

While a task runs with a ``write_guard`` (live leases), :class:`WriteHook` serves HTTP on 127.0.0.1 from
a thread of the agentwaves process, at a path holding a random token. ``claude`` gets a ``PreToolUse``
hook of type ``http`` (``--settings``, matcher ``Write|Edit|MultiEdit|NotebookEdit``): Claude Code itself
POSTs the hook's input (the tool and its ``file_path``) to that URL, with no process started per write.
The server turns the path into one relative to the worktree and asks the guard; a refusal comes back as
``permissionDecision: deny`` with the refusal text as the reason, which Claude Code gives the model as the
tool's error (and the guard reports the ``write_refused`` event).

The hook fails closed (``onFailure: "block"``): if the server does not answer, the write is refused. The
agent's own shell commands run without network (the nested sandbox), so they cannot reach the server; a
request without the token is answered 404 and asks nothing. The end-of-task check of the run layer
still runs after every task.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

MATCHER = "Write|Edit|MultiEdit|NotebookEdit"
TIMEOUT = 30  # seconds: the hook's own limit in Claude Code
MAX_INPUT = 1 << 28  # bytes of one hook input read (it carries the file's new content)
LOOPBACK = "127.0.0.1"


class WriteHook:
    """The HTTP server of one ``claude`` process's write hook (a context manager)."""

    def __init__(self, worktree: Path, guard: Callable[[str], str | None]) -> None:
        self.worktree = Path(os.path.realpath(worktree))
        self.guard = guard
        self.token = secrets.token_urlsafe(16)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ what claude gets

    @property
    def url(self) -> str:
        assert self._server is not None, "the hook is not serving"
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/{self.token}"

    def settings(self) -> dict[str, Any]:
        """The ``hooks`` entry of claude's ``--settings``."""
        hook = {"type": "http", "url": self.url, "timeout": TIMEOUT, "onFailure": "block"}
        return {"PreToolUse": [{"matcher": MATCHER, "hooks": [hook]}]}

    @staticmethod
    def env(base: dict[str, str]) -> dict[str, str]:
        """Variables claude needs to reach the hook: loopback added to ``NO_PROXY`` when a proxy is set."""
        if not any(base.get(k) for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy")):
            return {}
        out = {}
        for key in ("NO_PROXY", "no_proxy"):
            have = [h for h in (base.get(key) or "").split(",") if h.strip()]
            out[key] = ",".join([*have, LOOPBACK] if LOOPBACK not in have else have)
        return out

    # ------------------------------------------------------------------ serving

    def __enter__(self) -> WriteHook:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # 20 ms: only when used

        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = b""
                length = min(max(int(self.headers.get("content-length") or 0), 0), MAX_INPUT)
                if self.path == "/" + hook.token:
                    body = hook.answer(self.rfile.read(length))
                    self.send_response(200)
                else:  # read what was sent (and drop it), so the sender gets the 404, not a broken pipe
                    while length > 0:
                        chunk = self.rfile.read(min(length, 1 << 16))
                        if not chunk:
                            break
                        length -= len(chunk)
                    self.send_response(404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="agentwaves-write-hook", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # wakes the serving thread at once (``serve_forever`` would only notice a shutdown at its next
        # poll, up to its interval later, after every task)
        if self._thread is not None:
            self._wake[1].send(b"x")
            self._thread.join(5)
            for end in self._wake:
                end.close()
        if self._server is not None:
            self._server.server_close()

    def _serve(self) -> None:
        server = self._server
        assert server is not None
        with selectors.DefaultSelector() as selector:
            selector.register(server.socket, selectors.EVENT_READ)
            selector.register(self._wake[0], selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in selector.select()]
                if self._wake[0] in ready:
                    return
                try:
                    conn, address = server.get_request()
                except OSError:
                    continue
                server.process_request(conn, address)  # a thread per request (ThreadingHTTPServer)

    def answer(self, data: bytes) -> bytes:
        """The hook's JSON output for one hook input: a deny decision, or ``{}`` (the write may go ahead)."""
        try:
            event = json.loads(data or b"{}")
        except ValueError:
            return b"{}"
        rel = self.relative(event) if isinstance(event, dict) else None
        refusal = None
        if rel is not None:
            with contextlib.suppress(Exception):  # a failing guard refuses nothing: the end-of-task check
                refusal = self.guard(rel)
        if refusal is None:
            return b"{}"
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
