"""An agent event sink that records what a driver reports (for the unit tests of streams and reruns)."""

from __future__ import annotations

from typing import Any

from agentwaves.agents.backend import NoEvents


class Recorder(NoEvents):
    """Keeps ``(kind, what)`` for each rate limit, retry and tool call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def rate_limited(self, detail: str = "") -> None:
        self.calls.append(("rate_limited", detail))

    def retrying(self, kind: str, attempt: int, wait_s: float) -> None:
        self.calls.append(("retrying", (kind, attempt, wait_s)))

    def tool_call(self, name: str, args: Any, error: bool = False) -> None:
        self.calls.append(("tool", (name, error)))
