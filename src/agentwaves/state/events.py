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

from agentwaves.state.store import now_iso

Event = dict[str, Any]
Subscriber = Callable[[Event], None]


class EventLog:
    """Thread-safe append-only event log with in-process subscribers."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._fh = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        if self._fh is not None and path is not None and _ends_torn(path):
            self._fh.write("\n")  # a torn last line (a crash mid-write) must not swallow the next event
            self._fh.flush()

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
            try:
                fn(event)
            except Exception:  # a display that fails (closed stdout) never changes the run: drop it
                with self._lock:
                    if fn in self._subscribers:
                        self._subscribers.remove(fn)
        return event

    def close(self) -> None:
        with self._lock:
            if self._fh:
                self._fh.close()
                self._fh = None


def _ends_torn(path: Path) -> bool:
    """True when ``path`` is not empty and its last byte is not a newline."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            if fh.tell() == 0:
                return False
            fh.seek(-1, 2)
            return fh.read(1) != b"\n"
    except OSError:
        return False


def read_events(path: Path) -> list[Event]:
    """Every complete event in ``path``: a torn line (a crash mid-write), a line that is not JSON or not
    an object (a damaged file) is skipped, never an error."""
    events: list[Event] = []
    if not path.exists():
        return events
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events
