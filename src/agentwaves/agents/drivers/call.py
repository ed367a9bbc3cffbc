"""One run of an agent CLI: what the drivers pass it (:class:`AgentCall`) and how they run it again after
a 429/529/5xx that the CLI's own bounded retries could not get past (:func:`rerun_overloaded`).

Claude Code and Codex retry their own API calls a few times; when those retries are spent on a rate
limit or an overload, the driver raises :class:`Overloaded` and the whole process runs again: the run's
concurrency halved first (unless the CLI's own events already lowered it), a ``retry`` event, a wait of
``retry_initial_wait`` doubling, at most :data:`MAX_RERUNS` times; then the task fails with the last
one-line failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from agentwaves.agents.backend import AgentEvents, PlanRequest, ResolveRequest, TaskRequest
from agentwaves.agents.loop import AgentFailed, Transcript
from agentwaves.sandbox.bwrap import Sandbox

MAX_RERUNS = 2  # after the CLI's own retries: runs again after a 429/529/5xx, lowering concurrency

T = TypeVar("T")


@dataclass(frozen=True)
class AgentCall:
    """The parameters of one job's agent process. Each driver uses what its CLI supports (Codex has no
    turn limit, budget or write hook; the system prompt of Codex and ACP agents goes in the prompt)."""

    prompt: str
    cwd: Path
    sandbox: Sandbox
    events: AgentEvents
    transcript: Transcript
    idle: float  # no output for this long: a hang (stuck_after)
    system: str = ""  # appended to the agent's own system prompt where the CLI takes one
    max_turns: int = 0
    budget: float | None = None  # the run's budget left, USD (None: no limit)
    env: dict[str, str] = field(default_factory=dict)  # added to the agent's environment
    schema: dict[str, Any] | None = None  # the answer's JSON schema (None: the driver's handoff schema)
    read_only: bool = False  # the planner: the agent may read, not write
    guard: Callable[[str], str | None] | None = None  # live write leases: a refusal message, or None

    @classmethod
    def task(cls, request: TaskRequest, prompt: str, system: str = "") -> AgentCall:
        """An implementer's call: in the task's worktree, with its turn limit, budget, env and leases."""
        budget, env, guard = request.budget_left_usd, request.env, request.write_guard
        return cls.in_worktree(request, prompt, system, budget=budget, env=env, guard=guard)

    @classmethod
    def resolver(cls, request: ResolveRequest, prompt: str, system: str = "") -> AgentCall:
        """A resolver's call: in the merge's worktree."""
        return cls.in_worktree(request, prompt, system)

    @classmethod
    def in_worktree(
        cls,
        request: TaskRequest | ResolveRequest,
        prompt: str,
        system: str,
        *,
        budget: float | None = None,
        env: dict[str, str] | None = None,
        guard: Callable[[str], str | None] | None = None,
    ) -> AgentCall:
        return cls(
            prompt,
            request.worktree,
            request.sandbox,
            request.events,
            request.transcript,
            request.stuck_after,
            system=system,
            max_turns=request.limits.max_turns,
            budget=budget,
            env=env or {},
            guard=guard,
        )

    @classmethod
    def planner(
        cls,
        request: PlanRequest,
        prompt: str,
        sandbox: Sandbox,
        idle: float,
        system: str = "",
        schema: dict[str, Any] | None = None,
    ) -> AgentCall:
        """A planner's call: read-only, in the repository."""
        return cls(
            prompt,
            request.repo,
            sandbox,
            request.events,
            request.transcript,
            idle,
            system=system,
            max_turns=request.limits.max_turns,
            schema=schema,
            read_only=True,
        )


class Overloaded(AgentFailed):
    """A 429, 529 or 5xx that the CLI's own retries did not get past: worth running again, more slowly.

    ``kind`` is the ``retry`` event's (``rate_limit``, ``overloaded``); ``reported``: the CLI's events
    already lowered the run's concurrency; ``detail``: what the ``concurrency`` event says."""

    def __init__(self, message: str, kind: str, reported: bool = False, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.reported = reported
        self.detail = detail or message


def rerun_overloaded(
    once: Callable[[], T], events: AgentEvents, initial_wait: float, reruns: int = MAX_RERUNS
) -> T:
    """``once()``, run again after each :class:`Overloaded` (lowering the run's concurrency, waiting
    ``initial_wait`` doubling), at most ``reruns`` times; then its failure as :class:`AgentFailed`."""
    for rerun in range(reruns + 1):
        try:
            return once()
        except Overloaded as exc:
            if rerun == reruns:
                raise AgentFailed(str(exc)) from None
            if not exc.reported:
                events.rate_limited(exc.detail)
            wait = initial_wait * 2**rerun
            events.retrying(exc.kind, rerun + 1, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
