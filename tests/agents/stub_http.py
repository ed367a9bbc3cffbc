"""What the scripted API stubs share (:mod:`tests.agents.stub_messages`, :mod:`tests.agents.stub_responses`):
a threading HTTP server on 127.0.0.1, started and stopped with the stub; every request recorded; scripts
and fault queues per *conversation key*; JSON answers and SSE streams.

A stub subclasses :class:`ScriptedStub` and answers in :meth:`ScriptedStub.get` and
:meth:`ScriptedStub.post` (``handler`` is the request's :class:`StubHandler`). ``faults[key]`` (else
``faults["*"]``) is consumed one per request with :meth:`ScriptedStub.take_fault`; a fault is an HTTP
status (answered with :meth:`ScriptedStub.error_body`) or ``"hang"`` (headers, then silence until the
stub stops), served by :meth:`ScriptedStub.serve_fault`.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TASK = re.compile(r"# Your task: ([^:\s]+):")  # the task id in an implementer's first message
HANG_SECONDS = 120


def conversation_key(text: str) -> str:
    """The key of a conversation whose prompt is ``text``: its task id, ``planner`` (``planner-retry``
    once a plan was sent back), ``resolver``, else ``*``."""
    found = TASK.search(text)
    if found:
        return str(found.group(1))
    if "Your previous plan was invalid" in text:
        return "planner-retry"
    if "Plan this feature" in text:
        return "planner"
    if "conflicted in these files" in text:
        return "resolver"
    return "*"


class StubHandler(BaseHTTPRequestHandler):
    """One request to the stub: hands GET and POST to it, writes its answers."""

    protocol_version = "HTTP/1.1"
    stub: ScriptedStub  # set on the subclass that ScriptedStub.start makes

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.stub.get(self)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.stub.post(self, json.loads(self.rfile.read(length) or b"{}"))

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in {**self.stub.headers, **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_sse(self, events: list[dict[str, Any]]) -> None:
        """``events`` as one server-sent event stream (``event: TYPE``, ``data: JSON``), then close."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for k, v in self.stub.headers.items():
            self.send_header(k, v)
        self.end_headers()
        out = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
        self.wfile.write(out.encode())
        self.wfile.flush()
        self.close_connection = True

    def hang(self) -> None:
        """Headers of a stream, then nothing until the stub stops."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.stub.stopping.wait(HANG_SECONDS)


@dataclass
class ScriptedStub:
    script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: dict[str, list[Any]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer (e.g. rate-limit ones)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def start(self) -> Any:
        handler = type("Handler", (StubHandler,), {"stub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def record(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(body)

    def take_fault(self, key: str) -> Any:
        """The next fault scripted for ``key`` (else for ``*``), or None."""
        with self.lock:
            queue = self.faults.get(key) or self.faults.get("*") or []
            return queue.pop(0) if queue else None

    def serve_fault(self, handler: StubHandler, fault: Any) -> bool:
        """Answer with ``fault`` (``"hang"`` or an HTTP status); False if it is neither (answer normally)."""
        if fault == "hang":
            handler.hang()
            return True
        if isinstance(fault, int):
            payload, headers = self.error_body(fault)
            handler.send_json(fault, payload, headers)
            return True
        return False

    def step(self, key: str, n: int) -> dict[str, Any]:
        """Step ``n`` of ``key``'s script (else ``*``'s); the last step again once it is exhausted."""
        steps = self.script.get(key) or self.script.get("*") or [{"text": "done"}]
        return steps[min(n, len(steps) - 1)]

    # ------------------------------------------------------------------ what each API answers

    def get(self, handler: StubHandler) -> None:
        handler.send_json(200, {"data": []})

    def post(self, handler: StubHandler, body: dict[str, Any]) -> None:
        raise NotImplementedError

    def error_body(self, status: int) -> tuple[dict[str, Any], dict[str, str]]:
        """The JSON error and extra headers of an HTTP ``status`` fault."""
        return {"error": {"message": f"stub fault {status}"}}, {}
