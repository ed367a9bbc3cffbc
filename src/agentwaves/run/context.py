"""The objects one run passes around instead of globals: settings, state, events, usage, concurrency."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentwaves.agents.backend import AgentBackend
from agentwaves.agents.backend import BudgetReached as BudgetReached  # re-exported: it lives in agents/
from agentwaves.config import Config
from agentwaves.llm.base import CallContext, Response, Usage
from agentwaves.llm.usage import UsageTracker, usage_json
from agentwaves.plan import Analysis
from agentwaves.plan.model import Plan
from agentwaves.redact import Redactor
from agentwaves.run.leases.table import LeaseTable
from agentwaves.state.events import EventLog
from agentwaves.state.store import StateStore


class Slots:
    """A limit on running agents that adapts: rate limits lower it, successes restore it."""

    def __init__(self, capacity: int, *, recover_after: int = 5) -> None:
        self.max = capacity
        self.capacity = capacity
        self.in_use = 0
        self.recover_after = recover_after
        self._ok_streak = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self.in_use < self.capacity:
                self.in_use += 1
                return True
            return False

    def release(self) -> None:
        with self._lock:
            self.in_use = max(0, self.in_use - 1)

    def hold(self) -> Held | None:
        """One slot for one task, or None when all are in use."""
        return Held(self) if self.try_acquire() else None

    def rate_limited(self) -> int:
        """Halve the capacity (at least 1); returns the new capacity."""
        with self._lock:
            self._ok_streak = 0
            self.capacity = max(1, self.capacity // 2)
            return self.capacity

    def succeeded(self) -> int | None:
        """Count a successful call; after enough of them, add a slot back (returns the new capacity)."""
        with self._lock:
            if self.capacity >= self.max:
                return None
            self._ok_streak += 1
            if self._ok_streak >= self.recover_after:
                self._ok_streak = 0
                self.capacity += 1
                return self.capacity
            return None


class Held:
    """A task's slot: given back once, by whichever comes first of its agent finishing (the commit after
    it holds no slot) and the task's end."""

    def __init__(self, slots: Slots) -> None:
        self._slots = slots
        self._given_back = False
        self._lock = threading.Lock()

    def release(self) -> bool:
        """Give the slot back (:meth:`Slots.release`); True the first time only."""
        with self._lock:
            if self._given_back:
                return False
            self._given_back = True
        self._slots.release()
        return True


@dataclass
class RunContext:
    repo: Path
    run_dir: Path
    store: StateStore
    plan: Plan
    analysis: Analysis
    config: Config
    backend: AgentBackend
    events: EventLog
    tracker: UsageTracker
    slots: Slots
    repo_map: str = ""
    redactor: Redactor = field(default_factory=Redactor)
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = ""
    progress: dict[str, float] = field(default_factory=dict)
    interrupted: int | None = None  # the signal (SIGINT, SIGTERM) that stopped the run
    interrupt_deadline: float = 0.0  # monotonic time after which running agents are no longer waited for
    leases: LeaseTable = field(default_factory=LeaseTable)  # live write leases of the running groups

    @property
    def run_id(self) -> str:
        return self.store.state.run_id

    @property
    def model(self) -> str:
        return self.backend.model

    def log_path(self, task_id: str) -> Path:
        return self.run_dir / "logs" / f"{task_id}.log"

    def handoff_path(self, task_id: str) -> Path:
        return self.run_dir / "handoffs" / f"{task_id}.json"


class RunHooks:
    """One agent's event sink (:class:`~agentwaves.agents.backend.AgentEvents`): usage and cost
    accounting, budget, events, progress for stuck detection, concurrency on rate limits."""

    def __init__(self, ctx: RunContext, scope: str) -> None:
        self.ctx = ctx
        self.scope = scope

    def check_budget(self) -> None:
        # Ctrl-C: no new model call or agent; the task goes back to pending
        if self.ctx.interrupted is not None:
            raise BudgetReached(self.ctx.stop_reason)
        budget = self.ctx.config.budget_usd
        if budget is not None and self.ctx.tracker.cost() >= budget:
            raise BudgetReached(
                f"budget of {usd(budget)} reached (spent {usd(self.ctx.tracker.cost())}): "
                "resume with a higher --budget-usd to continue"
            )

    def budget_left(self) -> float | None:
        budget = self.ctx.config.budget_usd
        return None if budget is None else max(0.0, budget - self.ctx.tracker.cost())

    def before_call(self, call: CallContext) -> None:
        self.check_budget()
        self.ctx.progress[self.scope] = _now()
        self.ctx.events.emit("model_call", task=self.scope, agent=call.agent, call=call.call)

    def after_call(self, call: CallContext, response: Response) -> None:
        self.ctx.progress[self.scope] = _now()
        record_usage(self.ctx, self.scope, self.ctx.model, response.usage)

    def on_tool(self, call: CallContext, tool: object, reply: object) -> None:
        args = getattr(tool, "input", {}) or {}
        self.tool_call(getattr(tool, "name", "?"), args, bool(getattr(reply, "is_error", False)))

    def tool_call(self, name: str, args: Mapping[str, Any], error: bool = False) -> None:
        self.ctx.progress[self.scope] = _now()
        keys = ("path", "file_path", "command", "pattern", "notebook_path", "url")
        brief = str(next((args[k] for k in keys if args.get(k)), ""))[:120]
        self.ctx.events.emit(
            "tool", task=self.scope, tool=name, arg=self.ctx.redactor.redact(brief), error=error
        )

    def usage(
        self, usage: Usage, cost_usd: float | None = None, model: str = "", failed: bool = False
    ) -> None:
        self.ctx.progress[self.scope] = _now()
        record_usage(self.ctx, self.scope, model or self.ctx.model, usage, cost_usd, failed=failed)

    def alive(self) -> None:
        self.ctx.progress[self.scope] = _now()

    def rate_limited(self, detail: str = "") -> None:
        capacity = self.ctx.slots.rate_limited()
        self.ctx.events.emit("concurrency", capacity=capacity, reason="rate limited", detail=detail)

    def retrying(self, kind: str, attempt: int, wait_s: float) -> None:
        self.ctx.progress[self.scope] = _now()
        store = self.ctx.store
        with store.lock, contextlib.suppress(KeyError):
            store.state.task(self.scope).retries += 1  # saved with the next state write
        self.ctx.events.emit("retry", task=self.scope, kind=kind, attempt=attempt, wait_s=round(wait_s, 2))


def record_usage(
    ctx: RunContext,
    scope: str,
    model: str,
    usage: Usage,
    cost_usd: float | None = None,
    *,
    failed: bool = False,
    **extra: Any,
) -> None:
    """Count one model call or one agent process's report (``cost_usd``: what the agent said it cost;
    None: priced with agentwaves' table, or unknown for an unpriced model), count a success
    for adaptive concurrency unless it ``failed``, and emit the ``usage`` event with the run's total and
    whether every cost in that total is known (``run_cost_known``)."""
    cost = ctx.tracker.add(scope, model, usage, cost=cost_usd)
    grown = None if failed else ctx.slots.succeeded()
    if grown is not None:
        ctx.events.emit("concurrency", capacity=grown, reason="recovered")
    ctx.events.emit(
        "usage",
        task=scope,
        **usage_json(model, usage, cost=cost, known=True if cost_usd is not None else None),
        run_cost_usd=round(ctx.tracker.cost(), 6),
        run_cost_known=ctx.tracker.all_known(),
        **extra,
    )


def usd(amount: float) -> str:
    """Dollars with cents, or with four decimals below one dollar ($0.0064)."""
    return f"${amount:.2f}" if amount >= 1 else f"${amount:.4f}"


def _now() -> float:
    import time

    return time.monotonic()
