"""Stuck detection: a small thread that flags running tasks with no model call or tool progress for a while.

The executor starts one :class:`Watchdog` per run and stops it when the run ends. Every ``interval`` seconds
it looks at the tasks that are ``running`` in the state and at ``ctx.progress`` (task id -> monotonic time of
the last model call or tool call, kept by :class:`~agentwaves.run.context.RunHooks`). A task idle for longer
than ``Config.stuck_after`` gets ``TaskState.stuck_since`` (the wall-clock time of its last progress) and
one ``stuck`` event; when it makes progress again, or stops running, the flag is cleared (event
``unstuck``). Gates are not watched: their command has its own timeout and reports no progress.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from agentwaves.run.context import RunContext
from agentwaves.state.store import TaskState


def _iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Watchdog:
    """Flags stuck tasks of one run. ``start()`` returns self; ``stop()`` joins the thread (idempotent)."""

    def __init__(
        self,
        ctx: RunContext,
        interval: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.ctx = ctx
        self.stuck_after = float(ctx.config.stuck_after)
        self.interval = interval if interval is not None else max(0.05, min(5.0, self.stuck_after / 5))
        self._clock = clock
        self._wall = wall
        self._seen: dict[str, float] = {}
        self._flagged: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Watchdog:
        self._clear_stale()
        self._thread = threading.Thread(target=self._loop, name="agentwaves-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, self.interval * 2))
            self._thread = None
        with contextlib.suppress(Exception):
            self._clear_stale()

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # the watchdog must never take the run down
                self.check()

    def check(self) -> list[str]:
        """One pass; returns the ids of the tasks newly flagged as stuck."""
        now = self._clock()
        newly: list[tuple[str, float]] = []
        resumed: list[tuple[str, float]] = []
        store = self.ctx.store
        with store.lock:
            running = self._running()
            self._seen = {tid: t for tid, t in self._seen.items() if tid in running}
            self._flagged &= set(running)
            changed = self._unflag_others(running)
            for tid, ts in running.items():
                first = self._seen.setdefault(tid, now)
                idle = now - max(self.ctx.progress.get(tid, first), first)
                if idle > self.stuck_after and tid not in self._flagged:
                    self._flagged.add(tid)
                    ts.stuck_since = _iso(self._wall() - idle)
                    newly.append((tid, idle))
                elif idle <= self.stuck_after and (tid in self._flagged or ts.stuck_since):
                    self._flagged.discard(tid)
                    ts.stuck_since = None
                    resumed.append((tid, idle))
            if changed or newly or resumed:
                store.save()
        for tid, idle in newly:
            self.ctx.events.emit("stuck", task=tid, idle_s=round(idle))
        for tid, idle in resumed:
            self.ctx.events.emit("unstuck", task=tid, idle_s=round(idle))
        return [tid for tid, _ in newly]

    def _running(self) -> dict[str, TaskState]:
        return {t.id: t for t in self.ctx.store.state.tasks() if t.state == "running" and t.kind != "gate"}

    def _unflag_others(self, running: dict[str, TaskState]) -> bool:
        """Clear ``stuck_since`` of every task that is not running (finished, or left by a crash)."""
        changed = False
        for ts in self.ctx.store.state.tasks():
            if ts.stuck_since is not None and ts.id not in running:
                ts.stuck_since = None
                changed = True
        return changed

    def _clear_stale(self) -> None:
        with self.ctx.store.lock:
            if self._unflag_others(self._running() if not self._stop.is_set() else {}):
                self.ctx.store.save()


def idle_seconds(stuck_since: str | None, now: datetime | None = None) -> float | None:
    """Seconds since ``stuck_since`` (an ISO time), or None."""
    if not stuck_since:
        return None
    try:
        since = datetime.fromisoformat(stuck_since.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, ((now or datetime.now(UTC)) - since) / timedelta(seconds=1))
