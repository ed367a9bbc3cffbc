"""The parts of a run's state that the feedback loops add (baseline, culprits, repairs, revisions, history).

Kept apart from :mod:`agentwaves.state.store` so that module stays about storage; every model here is a
field of a state model there, with a default, so older state files still load.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class GateBaseline(BaseModel):
    """One gate's command run once on the run's base, before any wave."""

    exit: int
    passed: bool
    junit: bool = False  # a JUnit report was read
    failing: list[str] = Field(default_factory=list)  # tests failing on the base (JUnit ids)
    output: str = ""  # the output's tail


class Repair(BaseModel):
    """One repair attempt of a group that broke a gate: its last task run again with the gate's output."""

    attempt: int
    task: str
    gate: str
    output: str = ""  # the gate output the agent was shown (trimmed)
    passed: bool = False  # the gate passed on the repaired group alone
    commit: str | None = None
    error: str | None = None
    cost_usd: float = 0.0
    finished: str | None = None


class Revision(BaseModel):
    """A review comment sent back to a task's agent (``agentwaves revise``)."""

    n: int
    comment: str
    state: Literal["pending", "done", "failed"] = "pending"
    requested: str = ""
    commit: str | None = None
    error: str | None = None
    cost_usd: float = 0.0


class Rebuild(BaseModel):
    """Waves ``from_wave`` onward are to be merged again on ``parent`` (a revision, a held-back group)."""

    from_wave: int
    parent: str
    reason: str = ""


class HistoryEntry(BaseModel):
    """Wave commits replaced by a rebuild; each stays reachable under ``refs``."""

    n: int
    reason: str
    created: str = ""
    refs: dict[str, str] = Field(default_factory=dict)  # ref name -> commit
