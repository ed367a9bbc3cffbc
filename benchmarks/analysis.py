"""Plan analysis at scale: a generated 5,000-task plan, ~20,000 dependencies, three files per task.

Files: each task writes its own module and test (``src/mN/tI.py``, ``tests/mN/test_tI.py``) and one of
1,500 shared files (so ~3 tasks share each); a few tasks write a whole module directory or a test glob,
and some use one of 20 database tables, so there are real conflicts to find and resolve. The plan is built
once (not timed); ``analysis_ms`` is the best wall-clock time of five runs of
:func:`agentwaves.plan.analyze` (``analysis_cpu_ms``: the CPU time of that run).
``python benchmarks/analysis.py [--quick]`` prints the result as JSON.
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

from agentwaves.plan import Plan, Task, analyze

TASKS = 5_000
DEPS_PER_TASK = 4
WINDOW = 400  # a task depends on tasks among the WINDOW before it: a deep, wide graph
SHARED_FILES = 1_500
MODULES = 50
TABLES = 20


def generate(tasks: int = TASKS, seed: int = 7) -> Plan:
    """A reproducible plan of ``tasks`` tasks."""
    rng = random.Random(seed)
    out: list[Task] = []
    for i in range(tasks):
        lo = max(0, i - WINDOW)
        deps = rng.sample(range(lo, i), min(DEPS_PER_TASK, i - lo)) if i else []
        module = f"m{rng.randrange(MODULES)}"
        roll = rng.random()
        if roll < 0.002:
            third = f"src/{module}/"  # a whole directory
        elif roll < 0.004:
            third = f"tests/{module}/**/test_*.py"  # a glob
        else:
            third = f"src/shared/s{rng.randrange(SHARED_FILES)}.py"
        files = [f"src/{module}/t{i}.py", f"tests/{module}/test_t{i}.py", third]
        resources = [f"db:table{rng.randrange(TABLES)}"] if rng.random() < 0.05 else []
        out.append(
            Task.model_construct(
                id=f"t{i}",
                title=f"Task {i}",
                prompt=None,
                depends_on=[f"t{d}" for d in sorted(deps)],
                files=files,
                resources=resources,
                group=None,
                kind="task",
                command=None,
                estimate=float(rng.randint(5, 60)),
                meta={},
            )
        )
    return Plan(feature="Generated benchmark plan", tasks=out)


def run(quick: bool = False) -> dict[str, Any]:
    """Analyze the generated plan; ``quick`` uses 1,000 tasks and one timed run."""
    n = 1_000 if quick else TASKS
    t0 = time.perf_counter()
    plan = generate(n)
    build_ms = (time.perf_counter() - t0) * 1000
    timings: list[tuple[float, float]] = []
    for _ in range(1 if quick else 5):
        t0, c0 = time.perf_counter(), time.process_time()
        analysis = analyze(plan, max_agents=8)
        timings.append(((time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000))
    wall, cpu = min(timings)
    est = analysis.estimates
    return {
        "analysis_ms": round(wall, 1),
        "analysis_cpu_ms": round(cpu, 1),
        "tasks": len(plan.tasks),
        "dependencies": sum(len(t.depends_on) for t in plan.tasks),
        "files": sum(len(t.files) for t in plan.tasks),
        "conflicts": len(analysis.conflicts),
        "serialization_points": len(analysis.serialization_points),
        "waves": len(analysis.waves),
        "max_agents": analysis.max_agents,
        "estimates": {k: round(v, 1) for k, v in est.as_dict().items()},
        "plan_build_ms": round(build_ms, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv[1:]), indent=2))
