"""A scripted stub of the OpenAI Responses API on 127.0.0.1, streaming SSE as the Codex CLI uses it.

Scripted per *conversation key*, as :mod:`tests.agents.stub_messages`: the task id in the prompt
(``# Your task: ID:``), ``planner`` (``planner-retry`` once a plan was sent back), ``resolver``, else
``*``. The reply to a request is step N of that
key's script, N being the number of tool results (``function_call_output``) already in its input. A step
is ``{"shell": "COMMAND"}`` (an ``exec_command`` function call, Codex's shell tool), ``{"call": {"name":
..., "arguments": {...}}}`` (any other function call, e.g. an MCP tool's) or ``{"text": "..."}`` (the final
assistant message). ``faults[key]`` is consumed first, one per request: ``401``/``500`` (that
HTTP status) or ``"hang"`` (headers, then silence until the stub stops). Every request is kept, and
its ``Authorization`` header.
A WebSocket upgrade of ``/responses`` (codex's built-in provider tries one first) gets 426, so codex
falls back to HTTP at once. Each response reports ``input_tokens`` (``cached_tokens`` of them cached)
and ``output_tokens``.
The server, fault queues and SSE writing are :mod:`tests.agents.stub_http`'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.agents.stub_http import ScriptedStub, StubHandler, conversation_key

TOOL_OUTPUTS = ("function_call_output", "custom_tool_call_output")


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
class ResponsesStub(ScriptedStub):
    input_tokens: int = 1000
    cached_tokens: int = 200
    output_tokens: int = 50
    authorizations: list[str] = field(default_factory=list)  # each request's Authorization header

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def key(self, body: dict[str, Any]) -> str:
        return conversation_key(input_text(body))

    def requests_of(self, key: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if self.key(r) == key]

    def start(self) -> ResponsesStub:
        super().start()
        return self

    def get(self, handler: StubHandler) -> None:
        if handler.path.endswith("/responses"):  # codex's built-in provider tries a WebSocket first
            handler.send_json(426, {"error": {"message": "this stub speaks HTTP only"}})
            return
        handler.send_json(200, {"data": [], "models": []})

    def error_body(self, status: int) -> tuple[dict[str, Any], dict[str, str]]:
        return {"error": {"message": f"stub fault {status}", "type": "invalid_request_error"}}, {}

    def post(self, handler: StubHandler, body: dict[str, Any]) -> None:
        if not handler.path.endswith("/responses"):
            handler.send_json(404, {"error": {"message": f"no {handler.path} here"}})
            return
        key = self.key(body)
        self.record(body)
        with self.lock:
            self.authorizations.append(handler.headers.get("Authorization") or "")
        if not self.serve_fault(handler, self.take_fault(key)):
            handler.send_sse(self.stream_events(self.items(key, body)))

    def stream_events(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = [{"type": "response.created", "response": {"id": "resp"}}]
        for i, item in enumerate(items):
            events += [
                {"type": "response.output_item.added", "output_index": i, "item": item},
                {"type": "response.output_item.done", "output_index": i, "item": item},
            ]
        usage = {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        return [*events, {"type": "response.completed", "response": {"id": "resp", "usage": usage}}]

    def items(self, key: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The output items of the scripted step for this request."""
        inputs = [item for item in body.get("input") or [] if isinstance(item, dict)]
        n = sum(1 for item in inputs if item.get("type") in TOOL_OUTPUTS)
        step = self.step(key, n)
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
