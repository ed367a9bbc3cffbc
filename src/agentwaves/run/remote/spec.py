"""What the head sends a node for one task, and what comes back. Plain data: pickled by Ray.

Secrets never go into a :class:`TaskSpec` (which may be logged or shown): they travel in a separate
:class:`SecretEnv` argument whose ``repr`` shows only the names, and the node puts them only into the
agent's environment (the LLM client's key, a CLI agent's process environment), not ``os.environ``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class SecretEnv:
    """Environment variables the agent needs (``ANTHROPIC_API_KEY``); ``repr``/``str`` show names only."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, str]) -> None:
        self._values = dict(values)

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def items(self) -> list[tuple[str, str]]:
        return list(self._values.items())

    def __repr__(self) -> str:
        return f"SecretEnv({', '.join(sorted(self._values))}: values hidden)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (SecretEnv, (self._values,))


@dataclass
class LLMSpec:
    """How the node builds the task's LLM client (the same settings as this machine's)."""

    name: str
    model: str | None = None
    fake_script: str | None = None  # the script's text: the node cannot read this machine's files
    fake_suffix: str = ".yaml"
    fake_time_scale: float = 0.0
    cache: bool = True
    retry_attempts: int = 6
    retry_initial_wait: float = 1.0
    retry_after_cap: float = 60.0


@dataclass
class TaskSpec:
    """One task for a node: where to work (``branch`` at ``start``) and what the agent gets."""

    run_id: str
    repo_key: str  # the repository's root commit: names the node's cache
    group: str
    branch: str
    start: str
    port: int
    task: dict[str, Any]  # Task.model_dump()
    attempt: int
    backend: str = "builtin"
    agent: dict[str, Any] = field(default_factory=dict)  # the agent's settings (backends.AGENT_FIELDS)
    llm: LLMSpec = field(default_factory=lambda: LLMSpec("fake"))
    feature: str = ""
    repo_map: str = ""
    handoffs: list[dict[str, Any]] = field(default_factory=list)
    wave_notes: str = ""
    max_turns: int = 40
    max_task_tokens: int = 2_000_000
    run_timeout: float = 120.0
    stuck_after: float = 300.0
    budget_left_usd: float | None = None
    sandbox: str = "none"  # "bwrap" when this machine confines commands: the node must too
    setup: str | None = None
    setup_timeout: float = 900.0

    def __repr__(self) -> str:
        task = self.task.get("id")
        return f"TaskSpec(run={self.run_id}, group={self.group}, task={task}, start={self.start[:12]})"


@dataclass
class TaskResult:
    """What a node sends back. ``status``: done, failed, stopped (budget or stop), missing_base, unfit
    (this node cannot run the task: its agent CLI or bubblewrap is missing; ``error`` says which)."""

    status: str
    node: str
    error: str | None = None
    commit: str | None = None
    bundle: bytes | None = None
    handoff: dict[str, Any] | None = None
    transcript: str = ""
    stream: str = ""  # the id of the transcript's live stream (the head already has a prefix of it)
    worktree: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        size = len(self.bundle) if self.bundle else 0
        return f"TaskResult({self.status}, node={self.node}, commit={self.commit}, bundle={size} bytes)"
