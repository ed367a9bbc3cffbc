"""This machine's end of the :class:`~agentwaves.run.remote.channel.RunChannel`: remote events into the run.

A thread drains the channel every ``interval`` seconds and turns each node event into the run's own
event (``model_call``, ``tool``, ``usage``, ``retry``, ``concurrency``: the shapes of docs/events.md, plus
``node``; ``alive`` only moves the progress clock; ``transcript`` lines go to the task's log as they come),
the
usage tracker's totals, the stuck-detection progress clock and, when the budget is reached or the run is
stopping, the channel's stop flag.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from agentwaves.llm.base import Usage
from agentwaves.run.context import RunContext, record_usage, usd


class EventPump:
    def __init__(self, ctx: RunContext, channel: Any, interval: float = 0.2) -> None:
        self.ctx = ctx
        self.channel = channel
        self.interval = interval
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._stop_sent = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="ray-events")
        self.streamed: dict[str, int] = {}  # transcript stream id -> characters appended to the task log

    def start(self) -> EventPump:
        self._thread.start()
        return self

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self.drain()

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            self.drain()

    def drain(self) -> None:
        """Take every event the channel holds now and handle it (also called after each task result)."""
        import ray

        with self._lock:
            try:
                events = ray.get(self.channel.drain.remote(), timeout=30)
            except Exception:  # the channel actor is gone: results still come back with the tasks
                return
            for event in events:
                self._handle(event)
            self._check_stop()

    def _check_stop(self) -> None:
        if self._stop_sent:
            return
        budget = self.ctx.config.budget_usd
        reason = None
        if budget is not None and self.ctx.tracker.cost() >= budget:
            spent = usd(self.ctx.tracker.cost())
            reason = (
                f"budget of {usd(budget)} reached (spent {spent}): "
                "resume with a higher --budget-usd to continue"
            )
        elif self.ctx.stop.is_set():
            reason = self.ctx.stop_reason or "the run is stopping"
        if reason:
            self._stop_sent = True
            with contextlib.suppress(Exception):
                self.channel.stop.remote(reason)

    def _handle(self, event: dict[str, Any]) -> None:
        ctx = self.ctx
        kind, task, node = event.get("type"), str(event.get("task")), event.get("node")
        ctx.progress[task] = time.monotonic()
        if kind == "usage":
            usage = Usage(**{k: v for k, v in (event.get("usage") or {}).items() if k in Usage.model_fields})
            model, cost_usd = event.get("model") or ctx.model, event.get("cost_usd")
            record_usage(ctx, task, model, usage, cost_usd, failed=bool(event.get("failed")), node=node)
        elif kind == "rate_limited":
            capacity = ctx.slots.rate_limited()
            detail = event.get("detail") or ""
            ctx.events.emit("concurrency", capacity=capacity, reason="rate limited", detail=detail, node=node)
        elif kind == "transcript":
            text, stream = str(event.get("text") or ""), str(event.get("stream"))
            log = ctx.log_path(task)
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(ctx.redactor.redact(text))
            self.streamed[stream] = self.streamed.get(stream, 0) + len(text)
        elif kind == "model_call":
            ctx.events.emit(
                "model_call", task=task, agent=event.get("agent"), call=event.get("call"), node=node
            )
        elif kind == "tool":
            fields = {k: event.get(k) for k in ("tool", "arg", "error")}
            ctx.events.emit("tool", task=task, **fields, node=node)
        elif kind == "retry":
            if event.get("kind") == "rate_limit" and not event.get("cli"):
                ctx.events.emit("concurrency", capacity=ctx.slots.rate_limited(), reason="rate limited")
            with ctx.store.lock, contextlib.suppress(KeyError):
                ctx.store.state.task(task).retries += 1
            fields = {k: event.get(k) for k in ("kind", "attempt", "wait_s")}
            ctx.events.emit("retry", task=task, **fields, node=node)
