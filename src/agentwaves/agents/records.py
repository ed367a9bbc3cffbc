"""Records shared by the agents and the run layer, kept at the lowest layer that needs them."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Handoff(BaseModel):
    """What a finished task tells the tasks that build on it."""

    task: str
    summary: str = ""
    notes: str = ""
    files: list[str] = Field(default_factory=list)
