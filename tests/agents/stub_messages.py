"""A scripted stub of the Anthropic Messages API on 127.0.0.1, streaming SSE as Claude Code uses it.

The test scripts it per *conversation key*: the task id in the first user message (``# Your task: ID:``),
``planner`` for a planning prompt (``planner-retry`` once a plan was sent back), ``resolver`` for a
merge, else ``*``. The reply to a request is step N of that key's script, N being the number of
assistant messages already in the request, so concurrent agents and retried requests get the right step
without shared state. A step is ``{"tools": [{"name": "Write", "input": {...}}, ...]}`` (tool_use
blocks; ``{cwd}`` in an input is the agent's working directory, as its system prompt says) or
``{"text": "..."}`` (the final message). ``faults[key]`` is consumed first, one per request:
``529``/``429``/``401`` (that HTTP status) or ``"hang"`` (headers, then silence until the stub stops).
Requests without tools (Claude Code's side calls) get a short text. Every request is kept in
``requests``.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TASK = re.compile(r"# Your task: ([^:\s]+):")
CWD = re.compile(r'Primary working directory: ([^\s\\"]+)')


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")


@dataclass
class Stub:
    script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: dict[str, list[Any]] = field(default_factory=dict)
    model: str = "claude-sonnet-5-5"
    input_tokens: int = 1000
    output_tokens: int = 50
    delay: float = 0.0  # seconds before each answer to an agent's call (to make agents overlap)
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer (e.g. rate-limit ones)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def key(self, body: dict[str, Any]) -> str:
        messages = body.get("messages") or []
        first = text_of(messages[0].get("content", "")) if messages else ""
        found = TASK.search(first)
        if found:
            return found.group(1)
        if "Your previous plan was invalid" in first:
            return "planner-retry"
        if "Plan this feature" in first:
            return "planner"
        if "conflicted in these files" in first:
            return "resolver"
        return "*"

    def main_requests(self, key: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r.get("tools") and (key is None or self.key(r) == key)]

    def start(self) -> Stub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._json(200, {"data": [], "has_more": False})

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.startswith("/v1/messages") or "count_tokens" in self.path:
                    self._json(200, {"input_tokens": stub.input_tokens})
                    return
                with stub.lock:
                    stub.requests.append(body)
                key = stub.key(body)
                if body.get("tools"):
                    with stub.lock:
                        queue = stub.faults.get(key) or stub.faults.get("*") or []
                        fault = queue.pop(0) if queue else None
                    if fault == "hang":
                        self.send_response(200)
                        self.send_header("Content-Type", "text/event-stream")
                        self.end_headers()
                        stub.stopping.wait(120)
                        return
                    if isinstance(fault, int):
                        kind = {529: "overloaded_error", 429: "rate_limit_error", 401: "authentication_error"}
                        err = {
                            "type": "error",
                            "error": {"type": kind.get(fault, "api_error"), "message": "x"},
                        }
                        self._json(fault, err, {"retry-after": "0"} if fault == 429 else {})
                        return
                    blocks, stop = stub.step(key, body)
                    if stub.delay:
                        stub.stopping.wait(stub.delay)
                else:
                    blocks, stop = [{"type": "text", "text": "ok"}], "end_turn"
                if body.get("stream"):
                    self._stream(blocks, stop)
                else:
                    self._json(200, stub.message(blocks, stop))

            def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in {**stub.headers, **(headers or {})}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, blocks: list[dict[str, Any]], stop: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                for k, v in stub.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                msg = stub.message([], None)
                msg["usage"]["output_tokens"] = 1
                events: list[dict[str, Any]] = [{"type": "message_start", "message": msg}]
                for i, block in enumerate(blocks):
                    if block["type"] == "text":
                        start = {"type": "text", "text": ""}
                        delta = {"type": "text_delta", "text": block["text"]}
                    else:
                        start = {**block, "input": {}}
                        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
                    events += [
                        {"type": "content_block_start", "index": i, "content_block": start},
                        {"type": "content_block_delta", "index": i, "delta": delta},
                        {"type": "content_block_stop", "index": i},
                    ]
                events += [
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop, "stop_sequence": None},
                        "usage": {"output_tokens": stub.output_tokens},
                    },
                    {"type": "message_stop"},
                ]
                out = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
                self.wfile.write(out.encode())
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def step(self, key: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        steps = self.script.get(key) or self.script.get("*") or [{"text": "done"}]
        n = sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")
        step = steps[min(n, len(steps) - 1)]
        found = CWD.search(json.dumps(body.get("system") or "") + json.dumps(body.get("messages") or []))
        if found:  # "{cwd}" in a scripted input is the agent's working directory
            step = json.loads(json.dumps(step).replace("{cwd}", found.group(1)))
        if "tools" in step:
            blocks = [
                {"type": "tool_use", "id": f"toolu_{key}_{n}_{i}", "name": t["name"], "input": t["input"]}
                for i, t in enumerate(step["tools"])
            ]
            return blocks, "tool_use"
        return [{"type": "text", "text": step.get("text", "done")}], "end_turn"

    def message(self, blocks: list[dict[str, Any]], stop: str | None) -> dict[str, Any]:
        return {
            "id": f"msg_{uuid.uuid4().hex[:20]}",  # Claude Code merges assistant messages sharing an id
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
