"""The agent loop shared by the planner, the implementer and the resolver.

One model call per turn; every tool call in the response is executed and answered; the loop ends when a
tool says it finished (``finish``, ``submit_plan``) or a limit is hit. Control flow beyond the happy path
goes through :class:`AgentFailed`, caught by whoever runs the agent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agentwaves.errors import AgentwavesError
from agentwaves.llm.base import (
    LLM,
    CallContext,
    LLMError,
    Message,
    Request,
    Response,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
)
from agentwaves.redact import Redactor


class AgentFailed(AgentwavesError):
    """The agent could not finish: a limit, an LLM error that retries could not fix, or a bad answer."""


@dataclass
class ToolReply:
    """What a tool handler returns to the loop."""

    content: str
    is_error: bool = False
    finished: bool = False
    data: dict[str, Any] = field(default_factory=dict)


ToolHandler = Callable[[ToolUseBlock], ToolReply]


class LoopHooks(Protocol):
    """Observers of an agent's progress (the executor: events, state, usage, budget)."""

    def before_call(self, ctx: CallContext) -> None: ...

    def after_call(self, ctx: CallContext, response: Response) -> None: ...

    def on_tool(self, ctx: CallContext, tool: ToolUseBlock, reply: ToolReply) -> None: ...


class NoHooks:
    def before_call(self, ctx: CallContext) -> None:
        pass

    def after_call(self, ctx: CallContext, response: Response) -> None:
        pass

    def on_tool(self, ctx: CallContext, tool: ToolUseBlock, reply: ToolReply) -> None:
        pass


@dataclass
class Limits:
    max_turns: int = 40
    max_tokens: int = 2_000_000


@dataclass
class LoopResult:
    finish: ToolReply
    usage: Usage
    turns: int


class Transcript:
    """A task's log: one JSON line per message, secrets redacted. ``None`` path keeps nothing."""

    def __init__(self, path: Path | None, redactor: Redactor) -> None:
        self.path = path
        self.redactor = redactor
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, kind: str, payload: Any) -> None:
        if not self.path:
            return
        line = self.redactor.redact(json.dumps({"kind": kind, "data": payload}, default=str))
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


NUDGE = "Continue with your tools. When the work is complete, call `{finish}`."


def run_loop(
    llm: LLM,
    *,
    system: str,
    first_message: str,
    tools: list[ToolSpec],
    handle: ToolHandler,
    ctx: CallContext,
    limits: Limits,
    hooks: LoopHooks,
    transcript: Transcript,
    finish_tool: str = "finish",
) -> LoopResult:
    messages = [Message.user(first_message)]
    transcript.write("system", system)
    transcript.write("user", first_message)
    usage = Usage()
    for turn in range(1, limits.max_turns + 1):
        call_ctx = CallContext(ctx.agent, ctx.task_id, ctx.attempt, turn, ctx.hints)
        hooks.before_call(call_ctx)
        try:
            response = llm.complete(Request(system=system, messages=messages, tools=tools), call_ctx)
        except LLMError as exc:
            transcript.write("error", f"{type(exc).__name__}: {exc}")
            raise AgentFailed(f"model call failed: {exc}") from exc
        usage = usage + response.usage
        hooks.after_call(call_ctx, response)
        transcript.write("assistant", [b.model_dump() for b in response.content])
        messages.append(Message(role="assistant", content=list(response.content)))
        if usage.total_input + usage.output_tokens > limits.max_tokens:
            raise AgentFailed(f"token limit reached ({limits.max_tokens:,} tokens)")
        uses = response.tool_uses
        if not uses:
            messages.append(Message.user(NUDGE.format(finish=finish_tool)))
            continue
        results: list[ToolResultBlock | TextBlock] = []
        finished: ToolReply | None = None
        for use in uses:
            reply = handle(use)
            hooks.on_tool(call_ctx, use, reply)
            transcript.write(
                "tool",
                {"name": use.name, "input": use.input, "result": reply.content, "is_error": reply.is_error},
            )
            results.append(
                ToolResultBlock(tool_use_id=use.id, content=reply.content, is_error=reply.is_error)
            )
            if reply.finished and finished is None:
                finished = reply
        if finished is not None:
            return LoopResult(finish=finished, usage=usage, turns=turn)
        messages.append(Message(role="user", content=list(results)))
    raise AgentFailed(f"turn limit reached ({limits.max_turns} model calls) without `{finish_tool}`")
