"""Live terminal display of a run (placeholder: prints plain lines until the live view lands)."""

from __future__ import annotations

from typing import Any

from agentwaves.ui.plain import PlainPrinter


class LiveDisplay:
    def __init__(self) -> None:
        self._printer = PlainPrinter()

    def __enter__(self) -> LiveDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __call__(self, event: dict[str, Any]) -> None:
        self._printer(event)
