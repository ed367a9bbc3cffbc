"""Progress while a run prepares (plan analysis, state, the integration worktree), before its first event.

A plan of thousands of tasks takes a while to analyse; without this, ``execute`` would say nothing for
that long. Nothing is printed when preparation is quick (under :data:`AFTER` seconds).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from agentwaves.state.events import Subscriber

AFTER = 1.0  # seconds before the first line
EVERY = 5.0  # seconds between the next ones


@contextlib.contextmanager
def preparing(subscribers: list[Subscriber], enabled: bool = True) -> Iterator[None]:
    """Print a line on stderr if the run has not started after :data:`AFTER` s, then one every
    :data:`EVERY` s; stop at the run's first event (it is added to ``subscribers``)."""
    if not enabled:
        yield
        return
    from agentwaves.ui.term import console

    started = threading.Event()
    t0 = time.monotonic()

    def first_event(_event: dict[str, Any]) -> None:
        started.set()

    def tick() -> None:
        if started.wait(AFTER):
            return
        console(stderr=True).print("preparing the run: analysing the plan, creating its worktrees …")
        while not started.wait(EVERY):
            console(stderr=True).print(f"still preparing the run ({time.monotonic() - t0:.0f}s) …")

    subscribers.insert(0, first_event)
    thread = threading.Thread(target=tick, name="agentwaves-preparing", daemon=True)
    thread.start()
    try:
        yield
    finally:
        started.set()
        thread.join(timeout=2)
