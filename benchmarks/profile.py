"""Where a run's own time goes: ``python -m benchmarks.profile [--tasks N] [--seed S] [--agents A]
[--schedule eager|waves|sequential] [--scale S]``.

Runs one random DAG (:func:`.dags.random_dag`) with the fake LLM and times the executor's scheduler steps
(wrapped in this process only): opening a group (worktree and, for eager, the stacked base), starting
ready tasks (runs under the run's state lock, so task threads wait for it), committing waves, and the
stacked-base merges (how many branches each stack merged). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentwaves.git import stacking as stacking_module
from agentwaves.run import commits as commits_module
from agentwaves.run import executor as executor_module

from .dags import lower_bound, random_dag
from .runs import execute

STEPS = (
    (
        executor_module.Executor,
        ("_start_ready", "_open_group", "_stack_inputs", "_wave_notes", "_settle_group"),
    ),
    (commits_module.WaveCommitter, ("commit",)),
)


def _timed(fn: Callable[..., Any], sink: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sink.append(time.perf_counter() - t0)

    return wrapper


def profile(tasks: int, seed: int, agents: int, schedule: str, scale: float) -> dict[str, Any]:
    times: dict[str, list[float]] = defaultdict(list)
    stacked: list[int] = []
    saved = [(cls, n, getattr(cls, n)) for cls, names in STEPS for n in names]
    stack = stacking_module.stack
    for cls, name, fn in saved:
        setattr(cls, name, _timed(fn, times[name]))

    def counting_stack(repo: Path, base: str, branches: list[Any], **kwargs: Any) -> Any:
        stacked.append(len(branches))
        return stack(repo, base, branches, **kwargs)

    stacking_module.stack = _timed(counting_stack, times["stack"])  # type: ignore[assignment]
    plan = random_dag(tasks, seed)
    try:
        run = execute(plan, schedule, agents, scale)
    finally:
        for cls, name, fn in saved:
            setattr(cls, name, fn)
        stacking_module.stack = stack  # type: ignore[assignment]
    bound = lower_bound(plan, agents).lower * scale
    makespan = run.makespan_s
    return {
        "tasks": tasks,
        "agents": agents,
        "schedule": schedule,
        "state": "done" if run.ok else f"failed: {run.error}",
        "makespan_s": round(makespan, 2),
        "bound_s": round(bound, 2),
        "ratio": round(makespan / bound, 3) if bound else None,
        "steps": {
            name: {
                "calls": len(v),
                "total_s": round(sum(v), 2),
                "median_ms": round(statistics.median(v) * 1000, 1),
                "max_ms": round(max(v) * 1000, 1),
            }
            for name, v in times.items()
            if v
        },
        "stack_branches": {
            "calls": len(stacked),
            "median": statistics.median(stacked) if stacked else 0,
            "max": max(stacked, default=0),
            "total": sum(stacked),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=137)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--schedule", default="eager", choices=("eager", "waves", "sequential"))
    parser.add_argument("--scale", type=float, default=0.03, help="seconds per plan minute")
    args = parser.parse_args()
    print(json.dumps(profile(args.tasks, args.seed, args.agents, args.schedule, args.scale), indent=2))


if __name__ == "__main__":
    main()
