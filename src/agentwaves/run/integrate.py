"""Integrating a wave: merge its group branches (no working tree), resolve conflicts, one commit per wave.

Each group branch is merged against its own fork point: a throwaway commit whose tree is the current
integration tree and whose parents are the integration head and the fork point makes ``git merge-tree``
pick the fork point as merge base. That is what makes stacked branches (eager scheduling) merge exactly
what the group changed, and nothing it inherited.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from agentwaves.agents.backend import ResolveRequest
from agentwaves.agents.loop import Limits, Transcript
from agentwaves.git.merge import (
    accumulate,
    checkout_tree,
    record_resolution,
    resolution_tree,
    tree_of,
)
from agentwaves.git.merge import wave_message as merge_wave_message
from agentwaves.git.pool import WorktreePool
from agentwaves.git.stacking import Branch, stack
from agentwaves.git.worktrees import group_branch
from agentwaves.plan import Wave
from agentwaves.run.context import RunContext, RunHooks
from agentwaves.run.taskrun import task_usage
from agentwaves.sandbox.bwrap import Sandbox
from agentwaves.state.store import GroupState, now_iso


@dataclass
class Integration:
    tree: str | None
    failed: dict[str, list[str]] = field(default_factory=dict)
    resolved: dict[str, list[str]] = field(default_factory=dict)
    refused: dict[str, list[str]] = field(default_factory=dict)  # the resolver's changes it may not make


def integrate_wave(
    ctx: RunContext, wave: Wave, base: str, pool: WorktreePool, sandbox: Sandbox
) -> Integration:
    """Merge every non-gate group of ``wave`` onto ``base``. Conflicts go to the resolver agent.

    First all groups in one :func:`~agentwaves.git.stacking.stack` (two git processes per group); only if
    that conflicts, group by group, so that the conflicting ones can be resolved or reported."""
    repo = ctx.repo
    state = ctx.store.state
    heads: list[GroupState] = [state.group(g.name) for g in wave.groups]
    branches = [
        Branch(h.name, h.head, h.base or base)
        for h in heads
        if h.head and not (h.tasks and h.tasks[0].kind == "gate")
    ]
    _, tree, conflicts = stack(repo, base, branches)
    if not conflicts:
        return Integration(tree=tree)
    current = base
    result = Integration(tree=None)
    for b in branches:
        message = f"agentwaves: merge {b.group}"
        merged, step = accumulate(repo, current, b.head, message, fork=b.fork)
        if step.conflicts:
            conflicts = list(step.conflicts)
            ctx.events.emit("merge_conflict", group=b.group, wave=wave.index, paths=conflicts)
            answer = _resolve(ctx, b.group, wave.index, current, step.tree, conflicts, pool, sandbox)
            if answer is None:
                result.failed[b.group] = conflicts
                continue
            resolved, refused = answer
            result.resolved[b.group] = conflicts
            if refused:
                result.refused[b.group] = refused
            merged = record_resolution(repo, current, b.head, resolved, message)
        current = merged
    result.tree = None if result.failed else tree_of(repo, current)
    return result


def _resolve(
    ctx: RunContext,
    group: str,
    wave: int,
    current: str,
    conflicted_tree: str,
    paths: list[str],
    pool: WorktreePool,
    sandbox: Sandbox,
) -> tuple[str, list[str]] | None:
    """The resolved tree and the paths outside the conflicted ones the resolver changed (left out), or
    None when it could not resolve."""
    name = f"resolve-{wave}-{group}"
    worktree = pool.acquire(name, group_branch(ctx.run_id, name), current)
    try:
        checkout_tree(worktree, conflicted_tree)
        scope = f"resolve:{group}"
        try:
            outcome = ctx.backend.resolve(
                ResolveRequest(
                    worktree=worktree,
                    conflicts=paths,
                    group=group,
                    sandbox=sandbox,
                    events=RunHooks(ctx, scope),
                    transcript=Transcript(ctx.log_path(f"resolve-{wave}-{group}"), ctx.redactor),
                    feature=ctx.plan.feature,
                    limits=Limits(ctx.config.max_turns, ctx.config.max_task_tokens),
                    run_timeout=ctx.config.run_timeout,
                    stuck_after=ctx.config.stuck_after,
                    tree=conflicted_tree,
                )
            )
        finally:  # what the resolver spent counts on resume too
            with ctx.store.lock:
                ctx.store.state.scope_usage[scope] = task_usage(ctx, scope)
                ctx.store.save()
        ctx.events.emit(
            "resolved" if outcome.resolved else "resolve_failed",
            group=group,
            wave=wave,
            paths=paths,
            remaining=outcome.remaining,
            summary=outcome.summary,
        )
        if not outcome.resolved:
            return None
        tree, refused = resolution_tree(worktree, conflicted_tree, paths)
        if refused:  # e.g. an earlier wave's file deleted, a sitecustomize.py added: never committed
            ctx.events.emit("resolver_refused", group=group, wave=wave, paths=refused)
        return tree, refused
    finally:
        pool.release(worktree)


def wave_message(ctx: RunContext, wave: Wave) -> str:
    """Subject, one line per task with its handoff summary, then the trailers find_wave_commit reads."""
    state = ctx.store.state
    items = []
    for g in wave.groups:
        for tid in g.tasks:
            ts = state.task(tid)
            summary = (ts.handoff.summary.strip().splitlines() or [""])[0] if ts.handoff else ""
            if ts.kind == "gate":
                summary = summary or "gate passed"
            items.append(f"- {tid} ({g.name}): {summary or ts.title}")
    subject = f"agentwaves: wave {wave.index} complete ({' '.join(g.name for g in wave.groups)})"
    return merge_wave_message(ctx.run_id, wave.index, subject, "\n".join(items))


def wave_handoff_markdown(ctx: RunContext, wave: Wave) -> str:
    state = ctx.store.state
    out = [f"## Wave {wave.index}"]
    for g in wave.groups:
        for tid in g.tasks:
            h = state.task(tid).handoff
            if h is None:
                continue
            out.append(f"- **{tid}** ({g.name}): {h.summary.strip()}")
            if h.notes.strip():
                out.append(f"  - notes: {h.notes.strip()}")
            if h.files:
                out.append(f"  - files: {', '.join(h.files)}")
    return "\n".join(out) + "\n"


def mark_wave_committed(ctx: RunContext, wave: Wave, commit: str) -> None:
    with ctx.store.lock:
        ws = ctx.store.state.wave(wave.index)
        ws.state, ws.commit, ws.finished = "done", commit, now_iso()
        ctx.store.save()


MAX_WAVE_NOTES = 6000  # characters of earlier waves' handoffs a task's prompt gets


class WaveNotes:
    """The earlier waves' handoffs, for the prompts of a wave's tasks; final, and then cached, once every
    earlier wave is committed. ``lock`` is the run's state lock; ``earlier_committed(wave)`` says whether
    every wave before ``wave`` is committed."""

    def __init__(
        self, ctx: RunContext, lock: threading.Condition, earlier_committed: Callable[[int], bool]
    ) -> None:
        self.ctx, self.lock, self.earlier_committed = ctx, lock, earlier_committed
        self.cache: dict[int, str] = {}

    def __call__(self, wave: Wave) -> str:
        cached = self.cache.get(wave.index)
        if cached is not None:
            return cached
        with self.lock:
            notes = [
                wave_handoff_markdown(self.ctx, w) for w in self.ctx.analysis.waves if w.index < wave.index
            ]
            final = self.earlier_committed(wave.index)
        text = "\n".join(n for n in notes if n.count("\n") > 1)[-MAX_WAVE_NOTES:]
        if final:
            self.cache[wave.index] = text
        return text
