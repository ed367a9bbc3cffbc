"""The plans the makespan benchmark runs: the seed's examples, the article's plan and random DAGs.

A random DAG (:func:`random_dag`) lists its tasks in a random topological order; each task depends on 0-3
earlier tasks, drawn with a bias to recent ones (half of the draws come from the 8 tasks just before it).
Durations are log-normal (median 3 minutes, sigma 0.8) clipped to [0.5, 30] minutes. Each task writes 1-2
files of its own, and one task in ten also writes one of a few shared files, so the plan has real
conflicts that the analysis must serialize. Everything is seeded, so a seed always gives the same plan.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from agentwaves.plan import Plan, Task, analyze
from agentwaves.plan.load import load_plan

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_FILES = ("example1.pipeline", "example2.pipeline", "example3.pipeline", "article.yaml")

MEDIAN_MINUTES = 3.0
SIGMA = 0.8
MIN_MINUTES, MAX_MINUTES = 0.5, 30.0
RECENT = 8  # "recent" predecessors: the RECENT tasks just before a task
SHARED_SHARE = 0.1  # share of tasks that also write a shared file
TASKS_PER_SHARED_FILE = 5  # about this many writers per shared file


@dataclass(frozen=True)
class Bound:
    """The makespan lower bound of a plan on ``agents`` agents, in plan minutes."""

    critical_path: float
    work: float
    agents: int
    practical: float  # the analysis' own estimate of the wave schedule
    serial: float
    groups_sequential: float

    @property
    def lower(self) -> float:
        return max(self.critical_path, self.work / self.agents)


def lower_bound(plan: Plan, agents: int) -> Bound:
    """max(critical path, total work / agents), with the analysis' estimates beside it."""
    est = analyze(plan, max_agents=agents).estimates
    work = sum(t.estimate for t in plan.tasks)
    return Bound(
        critical_path=est.theoretical,
        work=work,
        agents=agents,
        practical=est.practical,
        serial=est.serial,
        groups_sequential=est.groups_sequential,
    )


def example_plans() -> dict[str, Path]:
    """The seed's three pipelines and the article's plan, by a short case name."""
    return {name.split(".")[0]: EXAMPLES_DIR / name for name in EXAMPLE_FILES}


def load_example(path: Path) -> Plan:
    return load_plan(path)


def _duration(rng: random.Random) -> float:
    minutes = math.exp(math.log(MEDIAN_MINUTES) + SIGMA * rng.gauss(0.0, 1.0))
    return round(min(MAX_MINUTES, max(MIN_MINUTES, minutes)), 2)


def _dependencies(rng: random.Random, i: int) -> list[int]:
    if i == 0:
        return []
    count = min(i, rng.choice((0, 1, 1, 2, 2, 3)))
    deps: set[int] = set()
    while len(deps) < count:
        if rng.random() < 0.5:
            deps.add(rng.randrange(max(0, i - RECENT), i))
        else:
            deps.add(int(i * rng.random() ** 0.5))  # skewed towards i
    return sorted(deps)


def random_dag(tasks: int, seed: int) -> Plan:
    """A reproducible random plan of ``tasks`` tasks (see the module docstring)."""
    rng = random.Random(seed)
    shared = max(1, round(tasks * SHARED_SHARE / TASKS_PER_SHARED_FILE))
    out: list[Task] = []
    for i in range(tasks):
        files = [f"src/m{i % 10}/t{i}.py"]
        if rng.random() < 0.5:
            files.append(f"tests/m{i % 10}/test_t{i}.py")
        if rng.random() < SHARED_SHARE:
            files.append(f"src/shared/s{rng.randrange(shared)}.py")
        out.append(
            Task(
                id=f"t{i}",
                title=f"Task {i}",
                depends_on=[f"t{d}" for d in _dependencies(rng, i)],
                files=files,
                estimate=_duration(rng),
            )
        )
    return Plan(feature=f"Random DAG of {tasks} tasks (seed {seed})", tasks=out)


def dag_sizes(count: int, seed: int = 1, low: int = 50, high: int = 200) -> list[int]:
    """``count`` sizes spread evenly over [low, high] (reproducible order)."""
    if count == 1:
        return [low]
    sizes = [round(low + (high - low) * k / (count - 1)) for k in range(count)]
    random.Random(seed).shuffle(sizes)
    return sizes
