"""Helpers of the LLM tests: a stub Messages API on 127.0.0.1, and a tiny agent loop over a dict "repo"."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentwaves.llm.base import (
    LLM,
    CallContext,
    Message,
    Request,
    Response,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
)

API_KEY = "sk-ant-test-0123456789abcdef"


def message_body(content: list[dict[str, Any]] | None = None, **usage: Any) -> dict[str, Any]:
    """A valid Messages API response body (strict validation passes)."""
    return {
        "id": "msg_stub",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": content if content is not None else [{"type": "text", "text": "hello"}],
        "stop_reason": "tool_use" if content and content[-1]["type"] == "tool_use" else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def error_body(status: int, etype: str, message: str, error_code: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"type": etype, "message": message}
    if error_code:
        err["details"] = {"error_code": error_code}
    return {"type": "error", "error": err}


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] = field(default_factory=message_body)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class StubAPI:
    """Answers POST /v1/messages with the queued replies in order (the last one repeats)."""

    url: str = ""
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def queue(self, *replies: Reply) -> StubAPI:
        self.replies.extend(replies)
        return self


def start_stub_api() -> tuple[StubAPI, Callable[[], None]]:
    """Start a stub API; returns it and a function that stops it."""
    api = StubAPI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            api.requests.append({"path": self.path, "body": body})
            api.headers.append({k.lower(): v for k, v in self.headers.items()})
            i = len(api.requests) - 1
            reply = api.replies[min(i, len(api.replies) - 1)] if api.replies else Reply()
            if reply.delay:
                time.sleep(reply.delay)
            data = json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return api, stop


# ------------------------------------------------------------------------------------- agent loop


def tool(name: str, **props: str) -> ToolSpec:
    schema = {
        "type": "object",
        "properties": {p: {"type": t} for p, t in props.items()},
        "required": list(props),
    }
    return ToolSpec(name=name, description=f"the {name} tool", input_schema=schema)


AGENT_TOOLS = [
    tool("read_file", path="string"),
    tool("write_file", path="string", content="string"),
    tool("edit_file", path="string", old="string", new="string"),
    tool("list_files"),
    tool("search", pattern="string"),
    tool("run", command="string"),
    tool("finish", summary="string"),
]
PLANNER_TOOLS = [tool("submit_plan", feature="string"), tool("read_file", path="string"), tool("list_files")]
SYSTEM = "You are a careful coding agent. Use the tools; call finish when done."


@dataclass
class LoopResult:
    responses: list[Response]
    files: dict[str, str]
    finish: dict[str, Any] | None


def run_loop(
    llm: LLM,
    ctx: CallContext,
    files: dict[str, str],
    *,
    prompt: str = "Do the task.",
    tools: list[ToolSpec] | None = None,
    system: str = SYSTEM,
    max_calls: int = 8,
) -> LoopResult:
    """A minimal implementer-style loop: executes read/write/finish against ``files``, validating inputs
    against the tools' ``required`` lists like the real agents do."""
    tools = tools or AGENT_TOOLS
    required = {t.name: t.input_schema.get("required", []) for t in tools}
    files = dict(files)
    messages = [Message.user(prompt)]
    responses: list[Response] = []
    for call in range(1, max_calls + 1):
        c = CallContext(agent=ctx.agent, task_id=ctx.task_id, attempt=ctx.attempt, call=call, hints=ctx.hints)
        resp = llm.complete(Request(system=system, messages=messages, tools=tools), c)
        responses.append(resp)
        messages = [*messages, Message(role="assistant", content=list(resp.content))]
        if not resp.tool_uses:
            return LoopResult(responses, files, None)
        results: list[TextBlock | ToolResultBlock] = []
        for use in resp.tool_uses:
            missing = [k for k in required.get(use.name, []) if k not in use.input]
            if missing:
                results.append(
                    ToolResultBlock(tool_use_id=use.id, content=f"missing {missing}", is_error=True)
                )
                continue
            if use.name == "finish":
                return LoopResult(responses, files, use.input)
            if use.name == "read_file":
                path = use.input["path"]
                ok = path in files
                results.append(
                    ToolResultBlock(
                        tool_use_id=use.id, content=files.get(path, "no such file"), is_error=not ok
                    )
                )
            elif use.name == "write_file":
                files[use.input["path"]] = use.input["content"]
                results.append(ToolResultBlock(tool_use_id=use.id, content="written"))
            else:
                results.append(ToolResultBlock(tool_use_id=use.id, content="ok"))
        messages = [*messages, Message(role="user", content=list(results))]
    return LoopResult(responses, files, None)
