"""A scripted stub of the OpenAI Responses API on 127.0.0.1, streaming SSE as the Codex CLI uses it.

Scripted per *conversation key*, as :mod:`tests.agents.stub_messages`: the task id in the prompt
(``# Your task: ID:``), ``planner`` (``planner-retry`` once a plan was sent back), ``resolver``, else
``*``. The reply to a request is step N of that
key's script, N being the number of tool results (``function_call_output``) already in its input. A step
is ``{"shell": "COMMAND"}`` (an ``exec_command`` function call, Codex's shell tool), ``{"call": {"name":
..., "arguments": {...}}}`` (any other function call, e.g. an MCP tool's) or ``{"text": "..."}`` (the final
assistant message). ``faults[key]`` is consumed first, one per request: ``401``/``500`` (that
HTTP status) or ``"hang"`` (headers, then silence until the stub stops). Every request is kept.
Each response reports ``input_tokens`` (``cached_tokens`` of them cached) and ``output_tokens``.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TASK = re.compile(r"# Your task: ([^:\s]+):")


def input_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for item in body.get("input") or []:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [str(c.get("text") or "") for c in content if isinstance(c, dict)]
    return "\n".join(parts)


@dataclass
class ResponsesStub:
    script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: dict[str, list[Any]] = field(default_factory=dict)
    input_tokens: int = 1000
    cached_tokens: int = 200
    output_tokens: int = 50
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def key(self, body: dict[str, Any]) -> str:
        text = input_text(body)
        found = TASK.search(text)
        if found:
            return found.group(1)
        if "Your previous plan was invalid" in text:
            return "planner-retry"
        if "Plan this feature" in text:
            return "planner"
        if "conflicted in these files" in text:
            return "resolver"
        return "*"

    def requests_of(self, key: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if self.key(r) == key]

    def start(self) -> ResponsesStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._json(200, {"data": [], "models": []})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.endswith("/responses"):
                    self._json(404, {"error": {"message": f"no {self.path} here"}})
                    return
                key = stub.key(body)
                with stub.lock:
                    stub.requests.append(body)
                    queue = stub.faults.get(key) or stub.faults.get("*") or []
                    fault = queue.pop(0) if queue else None
                if fault == "hang":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    stub.stopping.wait(120)
                    return
                if isinstance(fault, int):
                    err = {"error": {"message": f"stub fault {fault}", "type": "invalid_request_error"}}
                    self._json(fault, err)
                    return
                self._stream(stub.step(key, body))

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, items: list[dict[str, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                events: list[dict[str, Any]] = [{"type": "response.created", "response": {"id": "resp"}}]
                for i, item in enumerate(items):
                    events += [
                        {"type": "response.output_item.added", "output_index": i, "item": item},
                        {"type": "response.output_item.done", "output_index": i, "item": item},
                    ]
                usage = {
                    "input_tokens": stub.input_tokens,
                    "input_tokens_details": {"cached_tokens": stub.cached_tokens},
                    "output_tokens": stub.output_tokens,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": stub.input_tokens + stub.output_tokens,
                }
                events.append({"type": "response.completed", "response": {"id": "resp", "usage": usage}})
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

    def step(self, key: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        steps = self.script.get(key) or self.script.get("*") or [{"text": "done"}]
        n = sum(
            1
            for item in body.get("input") or []
            if isinstance(item, dict)
            and item.get("type") in ("function_call_output", "custom_tool_call_output")
        )
        step = steps[min(n, len(steps) - 1)]
        if "shell" in step:
            args = json.dumps({"cmd": step["shell"]})
            call = {"type": "function_call", "name": "exec_command", "arguments": args}
            return [{**call, "id": f"fc_{key}_{n}", "call_id": f"call_{key}_{n}"}]
        if "call" in step:  # any function call: {"name", "arguments": {...}} and other fields as given
            spec = dict(step["call"])
            call = {**spec, "type": "function_call", "arguments": json.dumps(spec.get("arguments") or {})}
            return [{**call, "id": f"fc_{key}_{n}", "call_id": f"call_{key}_{n}"}]
        message = {"type": "message", "role": "assistant", "id": f"msg_{key}_{n}"}
        return [{**message, "content": [{"type": "output_text", "text": step.get("text", "done")}]}]
