"""Run events: appended to ``events.jsonl`` and handed to subscribers (the live display, ``--json``).

Every event is a flat JSON object with ``ts`` (ISO time), ``type`` and fields. The types and their fields
are documented in ``docs/events.md``; new fields may be added, none renamed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentwaves.run.state import now_iso

Event = dict[str, Any]
Subscriber = Callable[[Event], None]


class EventLog:
    """Thread-safe append-only event log with in-process subscribers."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._fh = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def subscribe(self, fn: Subscriber) -> None:
        self._subscribers.append(fn)

    def emit(self, type: str, **fields: Any) -> Event:
        event: Event = {"ts": now_iso(), "type": type, **fields}
        with self._lock:
            if self._fh:
                self._fh.write(json.dumps(event, default=str) + "\n")
                self._fh.flush()
            subscribers = list(self._subscribers)
        for fn in subscribers:
            fn(event)
        return event

    def close(self) -> None:
        with self._lock:
            if self._fh:
                self._fh.close()
                self._fh = None


def read_events(path: Path) -> list[Event]:
    """Every complete event in ``path`` (a torn last line from a crash is skipped)."""
    events: list[Event] = []
    if not path.exists():
        return events
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events
