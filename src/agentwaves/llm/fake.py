"""The fake backend: deterministic, offline, and wrapped by the same retry policy as the real one.

It plays the three agents from the structured ``CallContext.hints`` instead of understanding prompts:
heuristically by default (see :mod:`agentwaves.llm.fake_heuristics`), or exactly as a
:class:`FakeScript` says; it can inject faults, simulate latency, replay a recording, and reports token
usage modelled on the real API, prompt caching included. The same inputs always give the same tool calls.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentwaves.llm.base import (
    CallContext,
    FatalLLMError,
    Message,
    Request,
    Response,
    RetryableError,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from agentwaves.llm.fake_heuristics import append_block, draft_plan, merge_conflicts
from agentwaves.llm.replay import Replayer
from agentwaves.llm.usage import DEFAULT_MODEL, PromptCacheModel
from agentwaves.truncation import has_truncation_marker

FaultKind = Literal[
    "rate_limit", "overloaded", "server_error", "timeout", "connection", "malformed", "fatal", "spend_limit"
]
MALFORMED_PREFIX = "toolu_malformed_"


class ScriptCall(BaseModel):
    """One scripted model response: a single tool call."""

    model_config = ConfigDict(extra="forbid")
    tool: str
    input: dict[str, Any] = Field(default_factory=dict)


class Fault(BaseModel):
    """An injected failure for the calls of one task (or agent: ``planner``, ``resolver``)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    task: str
    """A task id, a resolver group, or an agent name (``planner``, ``implementer``, ``resolver``)."""
    call: int | None = Field(default=None, ge=1)
    """The model call number within the attempt (``CallContext.call``); every call if omitted."""
    error: FaultKind
    """What happens: a transient error, a ``malformed`` tool call, or a ``fatal``/``spend_limit`` error."""
    once: bool = False
    """Only on the task's first attempt (so a resumed run succeeds)."""
    times: int = Field(default=1, ge=1)
    """How often it fires per matching (task, call, attempt): 2 fails the first retry too."""
    retry_after: float | None = Field(default=None, ge=0)
    """The ``retry-after`` of a ``rate_limit`` fault, in seconds."""


class FakeScript(BaseModel):
    """What the fake does, loaded from YAML (``--fake-script``). Every part is optional."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    plan: dict[str, Any] | None = None
    """A plan mapping in the plan-file format, submitted verbatim by the planner."""
    plans: list[dict[str, Any]] | None = Field(default=None, min_length=1)
    """Plans submitted one per planner attempt, in order, the last repeating."""
    tasks: dict[str, list[ScriptCall]] = Field(default_factory=dict)
    """Per task id, the exact tool calls in order, one per model response; other tasks are heuristic."""
    repairs: dict[str, list[list[ScriptCall]]] = Field(default_factory=dict)
    """Per task id, the tool calls of its 1st, 2nd, ... repair (after a gate it broke); the last repeats."""
    revisions: dict[str, list[list[ScriptCall]]] = Field(default_factory=dict)
    """Per task id, the tool calls of its 1st, 2nd, ... revision (``agentwaves revise``)."""
    resolver: dict[str, list[ScriptCall]] | Literal["fail"] | None = None
    """Per group, the resolver's tool calls; or ``fail``: finish without resolving."""
    faults: list[Fault] = Field(default_factory=list)
    """Injected failures."""

    @model_validator(mode="after")
    def _one_plan_source(self) -> FakeScript:
        if self.plan is not None and self.plans is not None:
            raise ValueError("give either 'plan' or 'plans', not both")
        return self


Step = list[tuple[str, dict[str, Any]]] | str  # tool calls, or a final text


class FakeLLM:
    """A deterministic offline model. ``history`` records every (request, ctx) it was called with.

    ``script``: a :class:`FakeScript` (heuristic when None); ``replay``: a recording to answer from
    instead; ``time_scale``: seconds of simulated latency per minute of task estimate; ``sleep``: how to
    wait (tests pass a no-op); ``model``: the priced model the usage is modelled on.
    """

    name = "fake"

    def __init__(
        self,
        script: FakeScript | None = None,
        *,
        replay: Path | None = None,
        time_scale: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        model: str | None = None,
    ) -> None:
        self.script = script or FakeScript()
        self.model: str = f"fake/{model or DEFAULT_MODEL}"
        self.time_scale = max(0.0, time_scale)
        self.history: list[tuple[Request, CallContext]] = []
        self._replay = Replayer(replay) if replay is not None else None
        self._sleep = sleep
        self._lock = threading.Lock()
        self._fired: Counter[tuple[int, str, int, int]] = Counter()
        self._cache = PromptCacheModel()

    def complete(self, request: Request, ctx: CallContext) -> Response:
        with self._lock:
            self.history.append((dataclasses.replace(request, messages=list(request.messages)), ctx))
        if self._replay is not None:
            return self._replay.response(ctx)
        fault = self._fault(ctx)
        if fault is not None and fault.error != "malformed":
            raise _fault_error(fault, ctx)
        if fault is not None:
            step: Step = [_malformed(request, ctx)]
            planned = 0
        else:
            position = _position(request.messages)
            step, planned = self._decide(request, ctx, position)
            if planned and position < planned:
                self._sleep(self._latency(ctx) / planned)
        return self._respond(request, ctx, step, fault is not None)

    # -------------------------------------------------------------------------------------- decisions

    def _decide(self, request: Request, ctx: CallContext, pos: int) -> tuple[Step, int]:
        """The tool calls at conversation position ``pos``, and how many calls the whole job takes."""
        hints, key = ctx.hints, ctx.task_id or ""
        if ctx.agent == "planner":
            return self._plan_step(request, ctx), 0
        if ctx.agent == "implementer":
            for kind, scripted in (("repair", self.script.repairs), ("revision", self.script.revisions)):
                n = hints.get(kind)
                if isinstance(n, int) and scripted.get(key):
                    runs = scripted[key]
                    return _scripted(runs[min(n, len(runs)) - 1], pos)
            if key in self.script.tasks:
                return _scripted(self.script.tasks[key], pos)
            return _implementer(request, hints, pos)
        if ctx.agent == "resolver":
            group = str(hints.get("group") or key)
            if self.script.resolver == "fail":
                give_up = [("finish", {"summary": "cannot resolve", "notes": "unresolved"})]
                return (give_up if pos == 0 else "done."), 1
            if isinstance(self.script.resolver, dict) and group in self.script.resolver:
                return _scripted(self.script.resolver[group], pos)
            return _resolver(hints, pos)
        return f"(fake) nothing to do for agent {ctx.agent!r}.", 0

    def _plan_step(self, request: Request, ctx: CallContext) -> Step:
        submits = [(tu, res) for tu, res in _tool_exchanges(request.messages) if tu.name == "submit_plan"]
        if submits and submits[-1][1] is not None and not submits[-1][1].is_error:
            return "The plan is submitted."
        s = self.script
        if s.plans is not None:
            i = max(len(submits), ctx.attempt - 1)
            return [("submit_plan", s.plans[min(i, len(s.plans) - 1)])]
        if s.plan is not None:
            return [("submit_plan", s.plan)]
        hints = ctx.hints
        return [("submit_plan", draft_plan(str(hints.get("feature", "")), list(hints.get("files", []))))]

    def _latency(self, ctx: CallContext) -> float:
        if ctx.agent == "implementer":
            estimate = (ctx.hints.get("task") or {}).get("estimate", 1)
        elif ctx.agent == "resolver":
            estimate = 1
        else:
            return 0.0
        return float(estimate or 0) * self.time_scale

    def _fault(self, ctx: CallContext) -> Fault | None:
        for i, f in enumerate(self.script.faults):
            if f.task not in (ctx.task_id, ctx.agent) or (f.call is not None and f.call != ctx.call):
                continue
            if f.once and ctx.attempt != 1:
                continue
            key = (i, ctx.task_id or ctx.agent, ctx.call, ctx.attempt)
            with self._lock:
                if self._fired[key] >= f.times:
                    continue
                self._fired[key] += 1
            return f
        return None

    def _respond(self, request: Request, ctx: CallContext, step: Step, faulty: bool) -> Response:
        content: list[TextBlock | ToolUseBlock]
        if isinstance(step, str):
            content = [TextBlock(text=step)]
        else:
            seed = hashlib.sha256(f"{ctx.agent}|{ctx.task_id}|{ctx.attempt}".encode()).hexdigest()[:10]
            pos = _position(request.messages)
            prefix = f"{MALFORMED_PREFIX}{ctx.call}_" if faulty else "toolu_"
            content = [
                ToolUseBlock(id=f"{prefix}{seed}_{pos}_{i}", name=name, input=inp)
                for i, (name, inp) in enumerate(step)
            ]
        text = json.dumps([b.model_dump() for b in content], sort_keys=True)
        usage = self._cache.usage(request, text)
        stop = "end_turn" if isinstance(step, str) else "tool_use"
        return Response(content=content, stop_reason=stop, usage=usage, model=self.model)


# --------------------------------------------------------------------------------------------- helpers


def _position(messages: list[Message]) -> int:
    """How many of the fake's own answers the conversation holds, fault-injected ones not counted."""
    return sum(
        1
        for m in messages
        if m.role == "assistant"
        and not any(isinstance(b, ToolUseBlock) and b.id.startswith(MALFORMED_PREFIX) for b in m.content)
    )


def _tool_exchanges(messages: list[Message]) -> list[tuple[ToolUseBlock, ToolResultBlock | None]]:
    """Every tool call of the conversation with its result (None while unanswered), in order."""
    results = {b.tool_use_id: b for m in messages for b in m.content if isinstance(b, ToolResultBlock)}
    return [
        (b, results.get(b.id))
        for m in messages
        if m.role == "assistant"
        for b in m.content
        if isinstance(b, ToolUseBlock) and not b.id.startswith(MALFORMED_PREFIX)
    ]


def _scripted(calls: list[ScriptCall], pos: int) -> tuple[Step, int]:
    if pos < len(calls):
        return [(calls[pos].tool, dict(calls[pos].input))], len(calls)
    return "done.", len(calls)


def _implementer(request: Request, hints: dict[str, Any], pos: int) -> tuple[Step, int]:
    """Read each predicted file, then append one block to it. A file ``read_file`` showed in full is
    rewritten whole; a longer one is changed with ``edit_file`` on its last lines (read with ``tail``),
    so the fake never writes back a cut file; if that cannot be done the file is left alone."""
    task = dict(hints.get("task") or {})
    files = [str(f) for f in hints.get("files") or []]
    title = str(task.get("title") or task.get("id") or "task")
    plan: list[Step] = []
    skipped: list[str] = []
    if files:
        plan.append([("read_file", {"path": f}) for f in files])
        current: dict[str, str] = {}
        tails: dict[str, str | None] = {}
        for use, result in _tool_exchanges(request.messages):
            path = str(use.input.get("path"))
            if use.name == "read_file" and result is not None:
                current[path] = "" if result.is_error else result.content
            elif use.name == "run" and result is not None:
                tails[_tail_path(use.input)] = _tail_output(result)
        cut = [f for f in files if has_truncation_marker(current.get(f, ""))]
        if cut:
            plan.append([("run", {"command": f"tail -n {TAIL_LINES} -- {shlex.quote(f)}"}) for f in cut])
        writes: list[tuple[str, dict[str, Any]]] = []
        for f in files:
            if f not in cut:
                content = append_block(f, current.get(f, ""), task)
                writes.append(("write_file", {"path": f, "content": content}))
                continue
            tail = tails.get(f)
            new = append_block(f, tail, task) if tail else None
            if tail and new and new != tail:
                writes.append(("edit_file", {"path": f, "old": tail, "new": new}))
            else:
                skipped.append(f)
        if writes:
            plan.append(writes)
        done = [f for f in files if f not in skipped]
        summary = f"{title}: wrote {', '.join(done) or 'nothing'}"
        if skipped:
            summary += f"; left {', '.join(skipped)} unchanged (too long to read, and its end was not found)"
    else:
        plan.append([("list_files", {})])
        summary = f"{title}: no files were predicted, nothing written"
    notes = f"fake implementer: appended one block per file for task {task.get('id', '?')}"
    plan.append([("finish", {"summary": summary, "notes": notes})])
    return (plan[pos] if pos < len(plan) else "done."), len(plan)


TAIL_LINES = 40


def _tail_path(args: dict[str, Any]) -> str:
    """The file of a ``tail -n N -- PATH`` command the fake sent."""
    parts = shlex.split(str(args.get("command", "")))
    return parts[-1] if parts else ""


def _tail_output(result: ToolResultBlock) -> str | None:
    """What ``tail`` printed, or None if the command failed or its output was cut."""
    head, _, body = result.content.partition("\n")
    if result.is_error or head != "exit code: 0" or "output truncated" in body or not body:
        return None
    return body


def _resolver(hints: dict[str, Any], pos: int) -> tuple[Step, int]:
    conflicts: dict[str, str] = dict(hints.get("conflicts") or {})
    paths = sorted(conflicts)
    plan: list[Step] = []
    if paths:
        plan.append([("write_file", {"path": p, "content": merge_conflicts(conflicts[p])}) for p in paths])
    summary = f"resolved {len(paths)} conflicted file(s): {', '.join(paths) or 'none'}"
    plan.append([("finish", {"summary": summary, "notes": "kept both sides, ours first"})])
    return (plan[pos] if pos < len(plan) else "done."), len(plan)


def _malformed(request: Request, ctx: CallContext) -> tuple[str, dict[str, Any]]:
    """A tool call whose input fails its schema (write_file without content, submit_plan without tasks)."""
    names = [t.name for t in request.tools]
    if "write_file" in names:
        files = ctx.hints.get("files") or sorted(ctx.hints.get("conflicts") or {}) or ["notes.txt"]
        return ("write_file", {"path": str(next(iter(files)))})
    if "submit_plan" in names:
        return ("submit_plan", {"feature": str(ctx.hints.get("feature", ""))})
    return (names[0] if names else "write_file", {})


def _fault_error(fault: Fault, ctx: CallContext) -> Exception:
    who = f"{ctx.agent} {ctx.task_id or ''}".strip()
    match fault.error:
        case "rate_limit":
            return RetryableError("rate limited (429)", kind="rate_limit", retry_after=fault.retry_after)
        case "overloaded":
            return RetryableError("overloaded (529)", kind="overloaded")
        case "server_error":
            return RetryableError("server error (500)", kind="server_error")
        case "timeout":
            return RetryableError("timeout: the fake API did not answer in time", kind="timeout")
        case "connection":
            return RetryableError("connection error: injected by the fake script", kind="connection")
        case "spend_limit":
            return FatalLLMError("the Anthropic spend limit or credit is exhausted (429): injected fault")
        case _:
            return FatalLLMError(f"fatal model error for {who}, call {ctx.call}: injected by the fake script")
