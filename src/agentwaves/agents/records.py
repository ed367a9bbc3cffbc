"""Records shared by the agents and the run layer, kept at the lowest layer that needs them."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

MAX_LISTED_FILES = 200  # files named in a handoff (and so in prompts and state); the rest are counted
MAX_HANDOFF_TEXT = 4000  # characters of an agent's summary and notes kept for the tasks after it


class Handoff(BaseModel):
    """What a finished task tells the tasks that build on it."""

    model_config = ConfigDict(extra="forbid")

    task: str
    summary: str = ""
    notes: str = ""
    files: list[str] = Field(default_factory=list)
    files_total: int = 0  # how many files the task changed; ``files`` names at most the first 200


def printable_path(path: str) -> str:
    """A file name as text that can always be stored and sent: bytes that are not UTF-8 become ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def bounded_handoff(task: str, summary: str, notes: str, files: Iterable[str]) -> tuple[Handoff, list[str]]:
    """The handoff of ``task``, bounded whatever the agent wrote (prompts and state stay small), and the
    full sorted list of the files it changed, as printable text."""
    every = sorted({printable_path(p) for p in files})
    handoff = Handoff(
        task=task,
        summary=summary[:MAX_HANDOFF_TEXT],
        notes=notes[:MAX_HANDOFF_TEXT],
        files=every[:MAX_LISTED_FILES],
        files_total=len(every),
    )
    return handoff, every
