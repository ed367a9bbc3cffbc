"""The analysis of a plan: waves of groups, the critical path, conflicts resolved, and four estimates.

``analyze`` is pure: a validated :class:`~agentwaves.plan.model.Plan` in, an :class:`Analysis` out. The
executor runs exactly the waves and groups it returns, so everything here is deterministic.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import heapq
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentwaves.plan.conflicts import Conflict, enumerate_items, find_conflicts
from agentwaves.plan.model import Plan, PlanError, find_group_cycle, group_key
from agentwaves.plan.waves import Sweep

MAX_GROUP_NAME = 40
DEFAULT_MAX_AGENTS = 4


@dataclass
class Group:
    """Tasks that run in one worktree. ``after[t]``: tasks of this group that finish before ``t`` starts;
    tasks not ordered by ``after`` run at the same time."""

    name: str
    tasks: list[str]
    after: dict[str, list[str]]
    gate: bool = False


@dataclass
class Wave:
    index: int  # from 1
    groups: list[Group]

    @property
    def tasks(self) -> list[str]:
        return [t for g in self.groups for t in g.tasks]


@dataclass
class SerializationPoint:
    """A decision that two conflicting tasks run one after the other."""

    tasks: list[str]
    reason: str
    resolution: str  # "same group" | "later wave"
    moved: str | None = None  # with "later wave": the task whose group moved


@dataclass
class Estimates:
    """Predicted minutes: one task at a time; the seed's groups one at a time; dependencies only with
    unlimited agents (the critical path); and the schedule after conflicts with at most N agents."""

    serial: float
    groups_sequential: float
    theoretical: float
    practical: float

    def as_dict(self) -> dict[str, float]:
        return {
            "serial": self.serial,
            "groups_sequential": self.groups_sequential,
            "theoretical": self.theoretical,
            "practical": self.practical,
        }

    def speedup(self, value: float) -> float:
        """How many times faster than serial (1.0 when both are zero)."""
        return self.serial / value if value > 0 else 1.0


@dataclass
class Analysis:
    plan: Plan
    waves: list[Wave]
    critical_path: list[str]
    estimates: Estimates
    serialization_points: list[SerializationPoint]
    conflicts: list[Conflict]
    warnings: list[str]
    max_agents: int
    suggestions: list[str] = field(default_factory=list)
    schedule: dict[str, tuple[float, float]] = field(default_factory=dict)  # task -> (start, end) minutes

    def __post_init__(self) -> None:
        self._group = {t: g for w in self.waves for g in w.groups for t in g.tasks}
        self._wave = {t: w for w in self.waves for t in w.tasks}
        self._conflicts: dict[str, set[str]] = defaultdict(set)
        for c in self.conflicts:
            self._conflicts[c.a].add(c.b)
            self._conflicts[c.b].add(c.a)

    def group_of(self, task_id: str) -> Group:
        return self._group[task_id]

    def wave_of(self, task_id: str) -> Wave:
        return self._wave[task_id]

    def conflicts_of(self, task_id: str) -> set[str]:
        return set(self._conflicts.get(task_id, ()))

    def to_json(self) -> dict[str, Any]:
        """The stable ``--json`` shape (keys may be added, never renamed)."""
        return {
            "feature": self.plan.feature,
            "max_agents": self.max_agents,
            "waves": [
                {
                    "index": w.index,
                    "groups": [
                        {
                            "name": g.name,
                            "tasks": list(g.tasks),
                            "after": {t: list(p) for t, p in g.after.items() if p},
                            "gate": g.gate,
                        }
                        for g in w.groups
                    ],
                }
                for w in self.waves
            ],
            "critical_path": list(self.critical_path),
            "estimates": {k: json_number(v) for k, v in self.estimates.as_dict().items()},
            "serialization_points": [
                {"tasks": list(p.tasks), "reason": p.reason, "resolution": p.resolution}
                | ({"moved": p.moved} if p.moved else {})
                for p in self.serialization_points
            ],
            "conflicts": [{"tasks": [c.a, c.b], "reason": c.reason} for c in self.conflicts],
            "warnings": list(self.warnings),
            "suggestions": list(self.suggestions),
        }


def json_number(value: float) -> int | float:
    """An int when integral (``90`` not ``90.0``), else rounded to 3 decimals."""
    return int(value) if float(value).is_integer() else round(value, 3)


def build_analysis(plan: Plan, max_agents: int = DEFAULT_MAX_AGENTS) -> Analysis:
    """Waves, groups, conflicts resolved, critical path and estimates for ``plan`` (no advice yet)."""
    with _gc_paused():
        return _analyze(plan, max_agents)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: the analysis makes many small objects and little garbage, and
    collections triggered by them would cost a third of its time on large plans."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _analyze(plan: Plan, max_agents: int) -> Analysis:
    if max_agents < 1:
        raise PlanError(f"max agents must be at least 1 (got {max_agents})")
    cycle = find_group_cycle(plan.tasks)  # Plan validation already refuses these; a cheap second guard
    if cycle:
        raise PlanError("groups depend on each other in a cycle: " + " -> ".join([*cycle, cycle[0]]))
    tasks = plan.tasks
    ids = [t.id for t in tasks]
    pos = {tid: i for i, tid in enumerate(ids)}
    est = [float(t.estimate) for t in tasks]
    deps = [[pos[d] for d in dict.fromkeys(t.depends_on)] for t in tasks]
    conflicts = find_conflicts(plan)
    adjacency: list[list[int]] = [[] for _ in tasks]
    reason = {}
    for c in conflicts:
        a, b = pos[c.a], pos[c.b]
        adjacency[a].append(b)
        adjacency[b].append(a)
        reason[(a, b)] = c.reason

    keys = [[f.strip() for f in t.files] + [f"resource:{r.strip()}" for r in t.resources] for t in tasks]
    sweep = Sweep(
        est, deps, [t.is_gate for t in tasks], [group_key(t) for t in tasks], adjacency, keys, max_agents
    )
    result = sweep.run()
    after = result.after
    names = _group_names(plan, [[g.tasks for g in level] for level in result.levels])
    waves: list[Wave] = []
    for w, level in enumerate(result.levels, start=1):
        groups = []
        for g in level:
            order = sweep.order(g.tasks)
            groups.append(
                Group(
                    names[g.tasks[0]],
                    [ids[t] for t in order],
                    {ids[t]: [ids[p] for p in after[t]] for t in order},
                    g.gate,
                )
            )
        waves.append(Wave(w, groups))

    points = [
        SerializationPoint(
            [ids[d.a], ids[d.b]], reason[(d.a, d.b)], d.resolution, None if d.moved is None else ids[d.moved]
        )
        for d in result.decisions
    ]
    critical, theoretical = critical_path(est, deps)
    schedule, practical = _practical(waves, pos, est, after, max_agents)
    groups_sequential = sum(span for w in waves for span in _group_spans(w, pos, est, after))
    estimates = Estimates(sum(est), groups_sequential, theoretical, practical)
    analysis = Analysis(
        plan=plan,
        waves=waves,
        critical_path=[ids[i] for i in critical],
        estimates=estimates,
        serialization_points=points,
        conflicts=conflicts,
        warnings=_warnings(plan),
        max_agents=max_agents,
        schedule=schedule,
    )
    return analysis


def critical_path(est: Sequence[float], deps: Sequence[Sequence[int]]) -> tuple[list[int], float]:
    """The longest chain by estimate (ties: earlier tasks) and its length."""
    n = len(est)
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [len(d) for d in deps]
    for i, ds in enumerate(deps):
        for d in ds:
            succ[d].append(i)
    dist = [0.0] * n
    best_pred = [-1] * n
    queue = [i for i in range(n) if indeg[i] == 0]
    for i in queue:  # grows while iterating: Kahn's algorithm
        longest, pred = 0.0, -1
        for d in deps[i]:
            if pred == -1 or dist[d] > longest or (dist[d] == longest and d < pred):
                longest, pred = dist[d], d
        dist[i] = est[i] + longest
        best_pred[i] = pred
        for s in succ[i]:
            indeg[s] -= 1
            if indeg[s] == 0:
                queue.append(s)
    if n == 0:
        return [], 0.0
    end = max(range(n), key=lambda i: (dist[i], -i))
    path = [end]
    while best_pred[path[-1]] != -1:
        path.append(best_pred[path[-1]])
    return path[::-1], dist[end]


def _group_spans(
    wave: Wave, pos: dict[str, int], est: Sequence[float], after: Sequence[Sequence[int]]
) -> list[float]:
    spans = []
    for g in wave.groups:
        finish: dict[int, float] = {}
        for tid in g.tasks:  # already in an order that respects after
            t = pos[tid]
            finish[t] = est[t] + max((finish[p] for p in after[t]), default=0.0)
        spans.append(max(finish.values(), default=0.0))
    return spans


def _practical(
    waves: list[Wave],
    pos: dict[str, int],
    est: Sequence[float],
    after: Sequence[Sequence[int]],
    agents: int,
) -> tuple[dict[str, tuple[float, float]], float]:
    """List-schedule each wave, longest remaining chain first, at most ``agents`` at once; waves in turn."""
    schedule: dict[str, tuple[float, float]] = {}
    ids = {i: t for t, i in pos.items()}
    clock = 0.0
    for wave in waves:
        members = [pos[t] for t in wave.tasks]
        succ: dict[int, list[int]] = {t: [] for t in members}
        indeg = {t: len(after[t]) for t in members}
        for t in members:
            for p in after[t]:
                succ[p].append(t)
        tail: dict[int, float] = {}
        for g in reversed(wave.groups):
            for tid in reversed(g.tasks):
                t = pos[tid]
                tail[t] = est[t] + max((tail[s] for s in succ[t]), default=0.0)
        ready = [(-tail[t], t) for t in members if indeg[t] == 0]
        heapq.heapify(ready)
        running: list[tuple[float, int]] = []
        now = end = clock
        while ready or running:
            while ready and len(running) < agents:
                _, t = heapq.heappop(ready)
                schedule[ids[t]] = (now, now + est[t])
                heapq.heappush(running, (now + est[t], t))
            now, t = heapq.heappop(running)
            end = max(end, now)
            for s in succ[t]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    heapq.heappush(ready, (-tail[s], s))
        clock = end
    return schedule, clock


def _group_names(plan: Plan, levels: list[list[list[int]]]) -> dict[int, str]:
    """A unique, git-ref-safe name per final group, keyed by its first task's plan index."""
    tasks = plan.tasks
    explicit = {t.group for t in tasks if t.group is not None}
    taken: set[str] = set()
    out: dict[int, str] = {}
    explicit_of = {g[0]: _explicit_name(tasks, g) for level in levels for g in level}
    groups = sorted((g for level in levels for g in level), key=lambda g: (explicit_of[g[0]] is None, g[0]))
    for g in groups:
        name = explicit_of[g[0]]
        if name is None:
            name = _joined_name([tasks[t].id for t in g])
            base, k = name, 2
            while name in taken or name in explicit:
                name = f"{base[: MAX_GROUP_NAME - 4]}-{k}"
                k += 1
        taken.add(name)
        out[g[0]] = name
    return out


def _explicit_name(tasks: Sequence[Any], group: list[int]) -> str | None:
    for t in group:
        if tasks[t].group is not None:
            return str(tasks[t].group)
    return None


def _joined_name(ids: list[str]) -> str:
    name = "+".join(ids)
    if len(name) <= MAX_GROUP_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return name[: MAX_GROUP_NAME - 9].rstrip(".+-") + "-" + digest


def _warnings(plan: Plan) -> list[str]:
    missing = [t.id for t in plan.tasks if not t.is_gate and not t.files]
    if not missing:
        return []
    noun = "task has" if len(missing) == 1 else "tasks have"
    return [
        f"{len(missing)} {noun} no files, so conflicts cannot be checked for "
        f"{'it' if len(missing) == 1 else 'them'}: {enumerate_items(missing, limit=12)}"
    ]
