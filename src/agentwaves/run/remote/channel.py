"""Live progress from remote tasks: a Ray actor that nodes push events to and this machine drains.

:class:`RunChannel` is the actor's class (made a Ray actor by the runner, on this machine's node when it
can): nodes ``push`` events (model calls, tool calls, usage, retries) as they happen; the runner's pump
thread ``drain``s them into the run's :class:`~agentwaves.state.events.EventLog` (so the live display and
``events.jsonl`` see them) and accounts usage and budget. The other way, ``stop`` tells running tasks to
stop at their next model call (budget reached, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agentwaves.agents.loop import Transcript
from agentwaves.llm.base import CallContext, Response, Usage
from agentwaves.redact import Redactor
from agentwaves.run.context import BudgetReached


class RunChannel:
    """The actor: a queue of events and a stop flag. Holds no secrets (events are redacted on the node)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.stop_reason: str | None = None

    def push(self, events: list[dict[str, Any]]) -> None:
        self.events.extend(events)

    def drain(self) -> list[dict[str, Any]]:
        out, self.events = self.events, []
        return out

    def stop(self, reason: str) -> None:
        self.stop_reason = reason

    def stopped(self) -> str | None:
        return self.stop_reason


ALIVE_EVERY = 2.0  # seconds: an agent CLI's other output reaches the head at most this often
TRANSCRIPT_EVERY = 0.5  # seconds: transcript lines are sent in batches at most this often
TRANSCRIPT_BATCH = 256 * 1024  # characters: or when this much is waiting


class NodeHooks:
    """An agent's event sink on a node (:class:`~agentwaves.agents.backend.AgentEvents`: the builtin
    loop's hooks and a CLI driver's calls alike): events go to the channel; a stop raises
    :class:`BudgetReached`."""

    def __init__(self, channel: Any, task_id: str, node: str, redactor: Redactor) -> None:
        self.channel = channel
        self.task_id = task_id
        self.node = node
        self.redactor = redactor
        self._last: Any = None
        self._alive_at = 0.0
        self.before_flush: Callable[[], None] | None = None  # the transcript's last batch

    def send(self, type: str, **fields: Any) -> None:
        event = {"type": type, "task": self.task_id, "node": self.node, "at": time.time(), **fields}
        try:
            self._last = self.channel.push.remote([event])
        except Exception:  # the channel is gone (this machine lost): the task's result still returns
            self._last = None

    def flush(self) -> None:
        """Wait until every event sent so far is in the channel (before the result is returned)."""
        import ray

        if self.before_flush is not None:
            self.before_flush()
        if self._last is not None:
            with contextlib.suppress(Exception):
                ray.get(self._last, timeout=30)

    def check_budget(self) -> None:
        """Raise :class:`BudgetReached` when the head says the run is stopping (budget, Ctrl-C)."""
        import ray

        try:
            reason = ray.get(self.channel.stopped.remote(), timeout=30)
        except Exception:
            reason = None
        if reason:
            raise BudgetReached(reason)

    def before_call(self, call: CallContext) -> None:
        self.check_budget()
        self.send("model_call", agent=call.agent, call=call.call)

    def after_call(self, call: CallContext, response: Response) -> None:
        self.send("usage", usage=response.usage.model_dump())

    def on_tool(self, call: CallContext, tool: object, reply: object) -> None:
        args = getattr(tool, "input", {}) or {}
        self.tool_call(getattr(tool, "name", "?"), args, bool(getattr(reply, "is_error", False)))

    def on_retry(self, error: Any, attempt: int, wait: float) -> None:
        self.send("retry", kind=getattr(error, "kind", "?"), attempt=attempt, wait_s=round(wait, 2))

    # ------------------------------------------------------------ what a CLI driver reports
    def tool_call(self, name: str, args: Mapping[str, Any], error: bool = False) -> None:
        keys = ("path", "file_path", "command", "pattern", "notebook_path", "url")
        brief = str(next((args[k] for k in keys if args.get(k)), ""))[:120]
        self.send("tool", tool=name, arg=self.redactor.redact(brief), error=error)

    def usage(
        self, usage: Usage, cost_usd: float | None = None, model: str = "", failed: bool = False
    ) -> None:
        self.send("usage", usage=usage.model_dump(), cost_usd=cost_usd, model=model, failed=failed)

    def alive(self) -> None:
        now = time.monotonic()
        if now - self._alive_at >= ALIVE_EVERY:
            self._alive_at = now
            self.send("alive")

    def rate_limited(self, detail: str = "") -> None:
        self.send("rate_limited", detail=self.redactor.redact(detail))

    def retrying(self, kind: str, attempt: int, wait_s: float) -> None:
        # cli: the driver reports the throttling itself (rate_limited), the head must not halve twice
        self.send("retry", kind=kind, attempt=attempt, wait_s=round(wait_s, 2), cli=True)


class NodeTranscript(Transcript):
    """The task's transcript on a node: written to the node's log, and streamed to the head as it grows
    (``transcript`` events of this ``stream`` id, batched), so ``logs --follow`` shows a remote task while it
    runs. The head appends them to the task's log; at the end it appends only what it did not get."""

    def __init__(self, path: Path, hooks: NodeHooks) -> None:
        super().__init__(path, hooks.redactor)
        self.hooks = hooks
        self.stream = uuid.uuid4().hex
        self._pending: list[str] = []
        self._size = 0
        self._sent_at = 0.0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        hooks.before_flush = self.send

    def write(self, kind: str, payload: Any) -> None:
        line = self.redactor.redact(json.dumps({"kind": kind, "data": payload}, default=str)) + "\n"
        with self._lock:
            assert self.path is not None
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
            self._pending.append(line)
            self._size += len(line)
            wait = TRANSCRIPT_EVERY - (time.monotonic() - self._sent_at)
            due = wait <= 0 or self._size >= TRANSCRIPT_BATCH
            if not due and self._timer is None:  # the agent may go quiet now (a long command): send later
                self._timer = threading.Timer(wait, self.send)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.send()

    def send(self) -> None:
        """Send what is waiting (also called before the task's result is returned)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            text, self._pending, self._size = "".join(self._pending), [], 0
            self._sent_at = time.monotonic()
            if text:  # under the lock: the batches reach the channel in order
                self.hooks.send("transcript", stream=self.stream, text=text)
