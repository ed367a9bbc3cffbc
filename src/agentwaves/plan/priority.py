"""Which ready task starts first: the longest remaining chain of work (by estimate), then plan order; and
which groups each group builds on (what an eager group waits for), and which tasks wait for each task."""

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
    later = waited_on(analysis) if eager else _after_in_group(analysis)
    succ: dict[str, set[str]] = {t: set(s) for t, s in later.items()}
    if eager:
        for task in plan.tasks:
            for other in analysis.conflicts_of(task.id):
                if wave_of[other] > wave_of[task.id]:
                    succ[task.id].add(other)
    tail: dict[str, float] = {}
    for wave in reversed(analysis.waves):
        for group in reversed(wave.groups):
            for tid in reversed(group.tasks):
                tail[tid] = tasks[tid].estimate + max((tail[s] for s in succ[tid]), default=0.0)
    return {t: (-tail[t], order[t]) for t in tasks}


def group_deps(analysis: Analysis) -> dict[str, list[str]]:
    """Per group, the groups whose work it builds on: its tasks' dependencies' groups and the groups of
    earlier-wave tasks that conflict with its tasks."""
    out: dict[str, list[str]] = {}
    for wave in analysis.waves:
        for group in wave.groups:
            names: set[str] = set()
            for tid in group.tasks:
                names.update(analysis.group_of(d).name for d in analysis.plan.by_id[tid].depends_on)
                for other in analysis.conflicts_of(tid):
                    if analysis.wave_of(other).index < wave.index:
                        names.add(analysis.group_of(other).name)
            names.discard(group.name)
            out[group.name] = sorted(names)
    return out


def waited_on(analysis: Analysis) -> dict[str, list[str]]:
    """Per task, the tasks that cannot start before it is done: its dependents and the tasks after it in
    its group."""
    out = _after_in_group(analysis)
    for task in analysis.plan.tasks:
        for d in task.depends_on:
            out[d].append(task.id)
    return out


def _after_in_group(analysis: Analysis) -> dict[str, list[str]]:
    """Per task, the tasks of its group ordered after it (``after``)."""
    out: dict[str, list[str]] = {t.id: [] for t in analysis.plan.tasks}
    for wave in analysis.waves:
        for group in wave.groups:
            for tid, before in group.after.items():
                for b in before:
                    out[b].append(tid)
    return out
