"""Live write leases: what the lease check adds to each write of the builtin file tools.

One session (one :class:`WorktreeTools`) makes 1,000 ``write_file`` calls, once without a ``write_guard``
and once with the run's guard over a lease table of 8 other running groups (6 tasks each: paths, one
directory, one glob) plus the writer's own group. The writes go to the writer's own predicted files and to
free paths beside other groups' files (all allowed, so both modes do the same file work). Each mode is
timed five times, interleaved; ``added_ms_per_write`` is the median of the paired differences per write
(goal: under 1 ms), ``plain_ms_per_write`` and ``guarded_ms_per_write`` the best of each. Those are
differences of noisy totals, so ``guard_path_us`` also times what the check adds to a write on its own
(the path normalized, then the guard: best of 5 runs of 10,000), and ``check_us`` one
:meth:`LeaseTable.check` (best of 5 runs of 100,000).
``python benchmarks/leases.py [--quick]`` prints the result as JSON.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agentwaves.agents.tools import WorktreeTools
from agentwaves.run.leases.table import LeaseTable, write_guard
from agentwaves.sandbox.bwrap import NoSandbox

WRITES = 1_000
GROUPS = 8
TASKS_PER_GROUP = 6
REPEATS = 5
GOAL_MS = 1.0


def lease_table() -> LeaseTable:
    table = LeaseTable()
    for g in range(GROUPS):
        tasks: dict[str, list[str]] = {}
        for t in range(TASKS_PER_GROUP):
            tasks[f"g{g}t{t}"] = [f"src/g{g}/t{t}.py", f"tests/g{g}/test_t{t}.py"]
        tasks[f"g{g}t0"].append(f"src/g{g}/data/")
        tasks[f"g{g}t1"].append(f"docs/g{g}/**/*.md")
        table.take(f"g{g}", tasks)
    table.take("me", {"mine": ["src/me/", "tests/me/test_me.py"]})
    return table


def paths(n: int) -> list[str]:
    """The writes of the session, all allowed (so both modes write the same files): half to the writer's
    own leased directory, half to paths nobody leases, beside other groups' (``src/gN/other.py``)."""
    out = []
    for i in range(n):
        if i % 2:
            out.append(f"src/me/m{i % 20}.py")
        else:
            out.append(f"src/g{i % GROUPS}/other{i % 5}.py")
    return out


def _session(root: Path, targets: list[str], table: LeaseTable | None) -> tuple[float, int]:
    guard = write_guard(table, "mine", "me", lambda path, lease: None) if table is not None else None
    refused = 0
    with WorktreeTools(root, sandbox=NoSandbox(), write_guard=guard) as tools:
        t0 = time.perf_counter()
        for i, path in enumerate(targets):
            out = tools.execute("write_file", {"path": path, "content": f"x = {i}\n"})
            refused += out.is_error
        return time.perf_counter() - t0, refused


def run(quick: bool = False) -> dict[str, Any]:
    table = lease_table()
    targets = paths(WRITES)
    root = Path(tempfile.mkdtemp(prefix="agentwaves-bench-leases-"))
    try:
        _session(root, targets, None)  # warm the directories and caches
        plain, guarded, refused = [], [], 0
        for _ in range(2 if quick else REPEATS):
            plain.append(_session(root, targets, None)[0])
            seconds, refused = _session(root, targets, table)
            guarded.append(seconds)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    checks = 10_000 if quick else 100_000
    best_check = float("inf")
    for _ in range(2 if quick else REPEATS):
        t0 = time.perf_counter()
        for i in range(checks):
            table.check("me", targets[i % WRITES])
        best_check = min(best_check, time.perf_counter() - t0)
    best_path = float("inf")
    root = Path(tempfile.mkdtemp(prefix="agentwaves-bench-leases-"))
    try:
        guard = write_guard(table, "mine", "me", lambda path, lease: None)
        tools = WorktreeTools(root, sandbox=NoSandbox(), write_guard=guard)
        calls = 1_000 if quick else 10_000
        for _ in range(2 if quick else REPEATS):
            t0 = time.perf_counter()
            for i in range(calls):
                tools._lease_refusal(targets[i % WRITES])
            best_path = min(best_path, time.perf_counter() - t0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    plain_ms, guarded_ms = min(plain) * 1000 / WRITES, min(guarded) * 1000 / WRITES
    added = statistics.median(g - p for g, p in zip(guarded, plain, strict=True)) * 1000 / WRITES
    return {
        "writes": WRITES,
        "leasing_tasks": len(table.holders()),
        "refused": refused,
        "plain_ms_per_write": round(plain_ms, 4),
        "guarded_ms_per_write": round(guarded_ms, 4),
        "added_ms_per_write": round(added, 4),
        "guard_path_us": round(best_path * 1e6 / calls, 3),
        "check_us": round(best_check * 1e6 / checks, 3),
        "goal_ms": GOAL_MS,
        "met": added < GOAL_MS,
    }


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
