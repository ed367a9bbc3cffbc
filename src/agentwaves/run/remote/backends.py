"""Agent backends by name, as a node runs them: ``run a task through backend X in this worktree``.

A backend says which executables a node needs (a CLI agent: its binary) and which environment variables
it needs from this machine (an API key), and runs one task to a :class:`~agentwaves.state.store.Handoff`.
Only ``builtin`` (agentwaves' own loop) exists here; CLI agents register the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentwaves.agents.implementer import implement
from agentwaves.agents.loop import Limits, LoopHooks, Transcript
from agentwaves.agents.tools import WorktreeTools
from agentwaves.errors import UsageError
from agentwaves.llm.base import LLM
from agentwaves.plan.model import Task
from agentwaves.state.store import Handoff


@dataclass
class AgentJob:
    """Everything a backend gets for one task on a node."""

    task: Task
    worktree: Path
    tools: WorktreeTools
    llm: Callable[[], LLM]  # built only by backends that call a model from here
    feature: str
    repo_map: str
    handoffs: list[Handoff]
    wave_notes: str
    attempt: int
    limits: Limits
    hooks: LoopHooks
    transcript: Transcript
    env: dict[str, str]  # the agent's environment: secrets go here, never into os.environ


@dataclass(frozen=True)
class Backend:
    name: str
    run: Callable[[AgentJob], Handoff]
    executables: tuple[str, ...] = ()  # a node without one of them cannot run the backend

    def env_names(self, llm: str) -> tuple[str, ...]:
        """The variables of this machine's environment the agent needs on the node."""
        return ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL") if llm == "anthropic" else ()


def _builtin(job: AgentJob) -> Handoff:
    outcome = implement(
        job.llm(),
        job.task,
        job.tools,
        feature=job.feature,
        repo_map=job.repo_map,
        handoffs=job.handoffs,
        wave_notes=job.wave_notes,
        attempt=job.attempt,
        limits=job.limits,
        hooks=job.hooks,
        transcript=job.transcript,
    )
    return outcome.handoff


BACKENDS: dict[str, Backend] = {"builtin": Backend("builtin", _builtin)}


def backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UsageError(f"unknown agent backend {name!r}: choose {', '.join(sorted(BACKENDS))}") from None
