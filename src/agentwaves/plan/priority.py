"""Which ready task starts first: the longest remaining chain of work (by estimate), then plan order."""

from __future__ import annotations

from agentwaves.plan.graph import Analysis


def start_ranks(analysis: Analysis, *, eager: bool) -> dict[str, tuple[float, int]]:
    """Start order among ready tasks (smaller first): longest remaining chain first, then plan order.

    Barrier schedules count the chain within the wave, as the analysis's practical estimate does;
    eager counts it to the end of the plan: dependencies, in-group order, and a later-wave task that
    conflicts with this one (it cannot start before this one is done)."""
    plan = analysis.plan
    tasks = plan.by_id
    order = {t.id: i for i, t in enumerate(plan.tasks)}
    wave_of = {tid: wave.index for wave in analysis.waves for group in wave.groups for tid in group.tasks}
    succ: dict[str, set[str]] = {t: set() for t in tasks}
    for wave in analysis.waves:
        for group in wave.groups:
            for tid, before in group.after.items():
                for b in before:
                    succ[b].add(tid)
    if eager:
        for task in plan.tasks:
            for d in task.depends_on:
                succ[d].add(task.id)
            for other in analysis.conflicts_of(task.id):
                if wave_of[other] > wave_of[task.id]:
                    succ[task.id].add(other)
    tail: dict[str, float] = {}
    for wave in reversed(analysis.waves):
        for group in reversed(wave.groups):
            for tid in reversed(group.tasks):
                tail[tid] = tasks[tid].estimate + max((tail[s] for s in succ[tid]), default=0.0)
    return {t: (-tail[t], order[t]) for t in tasks}
