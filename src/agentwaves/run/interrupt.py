"""Ctrl-C and SIGTERM during a run: stop cleanly, resumable, nothing left behind.

The first SIGINT or SIGTERM asks the run to stop (``ctx.stop``), kills every agent command in progress
(their process groups, so a command run without a sandbox stops writing into its worktree), and lets the
agents' threads put their tasks back to pending; the run is then recorded ``interrupted`` (no task shown
running), worktrees, private HOMEs and cgroups are cleaned up as after any run, the summary says how to
resume, and the process exits 130 (SIGINT) or 143 (SIGTERM). An agent waiting for a model answer is waited
for at most :data:`GRACE_S` seconds. A second signal exits at once (commands are killed first).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

from agentwaves.run.context import RunContext
from agentwaves.sandbox.proc import RUNNING
from agentwaves.state.store import RunState

GRACE_S = 10.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def record_interrupted(state: RunState, reason: str) -> None:
    """The run is ``interrupted`` (resumable); what was running goes back to pending."""
    state.state = "interrupted"
    state.error = f"{reason}: resume with `agentwaves resume {state.run_id}`"
    for w in state.waves:
        for g in w.groups:
            for t in g.tasks:
                if t.state == "running":
                    t.state, t.error = "pending", "interrupted"
            if g.state == "running":
                g.state = "pending"
        if w.state == "running":
            w.state = "pending"


def _record_now(ctx: RunContext) -> None:
    """Best effort, for the second signal: save the run as interrupted unless the state is busy."""
    store = ctx.store
    if not store.lock.acquire(timeout=1.0):
        return
    try:
        if not store.sealed and store.state.state not in ("done", "interrupted"):
            record_interrupted(store.state, ctx.stop_reason or "interrupted")
            store.save()
        store.sealed = True
    except Exception:  # leaving at once matters more; status shows the run interrupted anyway
        pass
    finally:
        store.lock.release()


@contextlib.contextmanager
def interrupts(ctx: RunContext) -> Iterator[None]:
    """Handle SIGINT and SIGTERM for the duration of a run (main thread only; elsewhere: no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if ctx.interrupted is not None:  # the second one: leave now
            RUNNING.kill_all()
            _record_now(ctx)
            with contextlib.suppress(OSError):
                if sys.stdout.isatty():
                    os.write(sys.stdout.fileno(), b"\x1b[?25h\n")  # the live display hid the cursor
                os.write(2, f"agentwaves: {signal_name(signum)} again: exiting now\n".encode())
            os._exit(128 + signum)
        ctx.interrupted = signum
        ctx.interrupt_deadline = time.monotonic() + GRACE_S
        ctx.stop_reason = f"interrupted ({signal_name(signum)})"
        ctx.stop.set()
        RUNNING.kill_all()
        with contextlib.suppress(OSError):
            os.write(2, b"\nagentwaves: stopping the run (press Ctrl-C again to exit at once)\n")

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
