"""When a group's leases start and end, as the executor opens and settles groups (under the state lock)."""

from __future__ import annotations

from collections.abc import Callable

from agentwaves.plan import Group
from agentwaves.run.context import RunContext


def lease_group(ctx: RunContext, group: Group, committed: Callable[[int], bool]) -> None:
    """As the group starts: lease its unfinished tasks' predicted files to it, and drop the leases of
    committed waves (later groups start from their commit)."""
    waves = [w for w in ctx.analysis.waves if committed(w.index)]
    ctx.leases.release(*(t for w in waves for g in w.groups for t in g.tasks))
    tasks = ctx.plan.by_id
    todo = [t for t in group.tasks if tasks[t].kind != "gate" and ctx.store.state.task(t).state != "done"]
    ctx.leases.take(group.name, {t: tasks[t].files for t in todo})


def release_group(ctx: RunContext, group: Group, *, keep: bool) -> None:
    """As a task's thread ends (``keep``: the group still has a worktree open or opening). A group's
    leases last while its work can still clash at its wave's merge: until the wave is committed, or in
    eager mode until the group is done (later groups then start from a base stacked on it)."""
    if keep:
        return
    if ctx.config.schedule == "eager" or ctx.store.state.group(group.name).state != "done":
        ctx.leases.release(*group.tasks)


def restore_leases(ctx: RunContext, committed: Callable[[int], bool]) -> None:
    """On resume, after recovery: lease again what the killed process's groups held. A group had
    started when it has a branch; in an uncommitted wave its tasks' predicted files (done ones too, as
    they stay leased until the wave's commit) are leased to it again, as if the run had not stopped;
    with ``--schedule eager`` only while the group is not done. Groups that start later lease theirs as
    they start (:func:`lease_group`)."""
    state, tasks = ctx.store.state, ctx.plan.by_id
    for wave in ctx.analysis.waves:
        if committed(wave.index):
            continue
        for group in wave.groups:
            gs = state.group(group.name)
            if not gs.branch or (ctx.config.schedule == "eager" and gs.state == "done"):
                continue
            held = [t for t in group.tasks if tasks[t].kind != "gate"]
            ctx.leases.take(group.name, {t: tasks[t].files for t in held})
