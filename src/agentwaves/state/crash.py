"""Crash points for testing durability: ``kill -9`` the process at the N-th state transition.

Set ``AGENTWAVES_CRASH_AT=N`` to SIGKILL the process when it reaches the N-th crash point, and
``AGENTWAVES_CRASH_LOG=FILE`` to append the name of every crash point reached (to count them). Both are
read on each call, cost nothing when unset, and exist only for the crash-point sweep in the test suite.
"""

from __future__ import annotations

import os
import signal
import threading

_lock = threading.Lock()
_count = 0


def crashpoint(name: str) -> None:
    at = os.environ.get("AGENTWAVES_CRASH_AT")
    log = os.environ.get("AGENTWAVES_CRASH_LOG")
    if not at and not log:
        return
    global _count
    with _lock:
        _count += 1
        n = _count
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{n} {name}\n")
        if at and n == int(at):
            os.kill(os.getpid(), signal.SIGKILL)
