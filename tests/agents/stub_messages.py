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
``requests``. The server, fault queues and SSE writing are :mod:`tests.agents.stub_http`'s.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from tests.agents.stub_http import ScriptedStub, StubHandler, conversation_key

CWD = re.compile(r'Primary working directory: ([^\s\\"]+)')
ERROR_TYPES = {529: "overloaded_error", 429: "rate_limit_error", 401: "authentication_error"}


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")


@dataclass
class Stub(ScriptedStub):
    model: str = "claude-sonnet-5-5"
    input_tokens: int = 1000
    output_tokens: int = 50
    delay: float = 0.0  # seconds before each answer to an agent's call (to make agents overlap)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def key(self, body: dict[str, Any]) -> str:
        messages = body.get("messages") or []
        return conversation_key(text_of(messages[0].get("content", "")) if messages else "")

    def main_requests(self, key: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r.get("tools") and (key is None or self.key(r) == key)]

    def start(self) -> Stub:
        super().start()
        return self

    def get(self, handler: StubHandler) -> None:
        handler.send_json(200, {"data": [], "has_more": False})

    def error_body(self, status: int) -> tuple[dict[str, Any], dict[str, str]]:
        error = {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": "x"}}
        return error, {"retry-after": "0"} if status == 429 else {}

    def post(self, handler: StubHandler, body: dict[str, Any]) -> None:
        if not handler.path.startswith("/v1/messages") or "count_tokens" in handler.path:
            handler.send_json(200, {"input_tokens": self.input_tokens})
            return
        self.record(body)
        key = self.key(body)
        if body.get("tools"):
            if self.serve_fault(handler, self.take_fault(key)):
                return
            blocks, stop = self.blocks(key, body)
            if self.delay:
                self.stopping.wait(self.delay)
        else:
            blocks, stop = [{"type": "text", "text": "ok"}], "end_turn"
        if body.get("stream"):
            handler.send_sse(self.stream_events(blocks, stop))
        else:
            handler.send_json(200, self.message(blocks, stop))

    def stream_events(self, blocks: list[dict[str, Any]], stop: str) -> list[dict[str, Any]]:
        msg = self.message([], None)
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
        return [
            *events,
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": self.output_tokens},
            },
            {"type": "message_stop"},
        ]

    def blocks(self, key: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """The content blocks and stop reason of the scripted step for this request."""
        n = sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")
        step = self.step(key, n)
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
