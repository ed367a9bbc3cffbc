"""The objects one run passes around instead of globals: settings, state, events, usage, concurrency."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from agentwaves.config import Config
from agentwaves.errors import AgentwavesError
from agentwaves.llm.base import LLM, CallContext, Response
from agentwaves.llm.usage import UsageTracker, usage_json
from agentwaves.plan import Analysis
from agentwaves.plan.model import Plan
from agentwaves.redact import Redactor
from agentwaves.run.events import EventLog
from agentwaves.run.leases import LeaseTable
from agentwaves.run.state import StateStore


class BudgetReached(AgentwavesError):
    """The run's spending limit is reached; the run stops cleanly and can be resumed."""


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


@dataclass
class RunContext:
    repo: Path
    run_dir: Path
    store: StateStore
    plan: Plan
    analysis: Analysis
    config: Config
    llm: LLM
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
        return getattr(self.llm, "model", "") or ""

    def log_path(self, task_id: str) -> Path:
        return self.run_dir / "logs" / f"{task_id}.log"

    def handoff_path(self, task_id: str) -> Path:
        return self.run_dir / "handoffs" / f"{task_id}.json"


class RunHooks:
    """Loop hooks of one agent: usage and cost accounting, budget, events, progress for stuck detection."""

    def __init__(self, ctx: RunContext, scope: str) -> None:
        self.ctx = ctx
        self.scope = scope

    def before_call(self, call: CallContext) -> None:
        if self.ctx.interrupted is not None:  # Ctrl-C: no new model call; the task goes back to pending
            raise BudgetReached(self.ctx.stop_reason)
        budget = self.ctx.config.budget_usd
        if budget is not None and self.ctx.tracker.cost() >= budget:
            raise BudgetReached(
                f"budget of {usd(budget)} reached (spent {usd(self.ctx.tracker.cost())}): "
                "resume with a higher --budget-usd to continue"
            )
        self.ctx.progress[self.scope] = _now()
        self.ctx.events.emit("model_call", task=self.scope, agent=call.agent, call=call.call)

    def after_call(self, call: CallContext, response: Response) -> None:
        self.ctx.tracker.add(self.scope, self.ctx.model, response.usage)
        self.ctx.progress[self.scope] = _now()
        grown = self.ctx.slots.succeeded()
        if grown is not None:
            self.ctx.events.emit("concurrency", capacity=grown, reason="recovered")
        self.ctx.events.emit(
            "usage",
            task=self.scope,
            **usage_json(self.ctx.model, response.usage),
            run_cost_usd=round(self.ctx.tracker.cost(), 6),
        )

    def on_tool(self, call: CallContext, tool: object, reply: object) -> None:
        self.ctx.progress[self.scope] = _now()
        name = getattr(tool, "name", "?")
        args = getattr(tool, "input", {}) or {}
        brief = str(args.get("path") or args.get("command") or args.get("pattern") or "")[:120]
        self.ctx.events.emit(
            "tool",
            task=self.scope,
            tool=name,
            arg=self.ctx.redactor.redact(brief),
            error=bool(getattr(reply, "is_error", False)),
        )


def usd(amount: float) -> str:
    """Dollars with cents, or with four decimals below one dollar ($0.0064)."""
    return f"${amount:.2f}" if amount >= 1 else f"${amount:.4f}"


def _now() -> float:
    import time

    return time.monotonic()
