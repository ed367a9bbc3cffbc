"""Rewriting committed waves: a wave committed again without its culprits, or waves merged again.

Old wave commits are never lost: before a wave commit is replaced it is kept under
``refs/agentwaves/<run>/history/<n>/wave-<k>`` (and the integration head under ``.../head``), listed in
``state.history`` and by ``review``.

Crash safety: a rewrite first saves ``state.rebuild`` (which waves, on which parent), then moves refs.
On resume (:func:`prepare_resume`, before the usual recovery) a pending rebuild is carried out:
the integration branch goes back to ``parent`` and those waves are merged again from the group
branches; a wave that holds groups back is rebuilt the same way, so resuming retries its culprits.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext

from agentwaves.git.merge import commit_tree
from agentwaves.git.ops import git, update_ref
from agentwaves.git.stacking import Branch, stack
from agentwaves.plan import Wave
from agentwaves.run.context import RunContext
from agentwaves.run.integrate import wave_message
from agentwaves.state.crash import crashpoint
from agentwaves.state.feedback import HistoryEntry, Rebuild
from agentwaves.state.store import now_iso


def history_ref(run_id: str, n: int, name: str) -> str:
    return f"refs/agentwaves/{run_id}/history/{n}/{name}"


def keep_history(ctx: RunContext, reason: str, commits: dict[str, str]) -> None:
    """Point history refs at ``commits`` (name -> sha) and record them (under the store lock)."""
    state = ctx.store.state
    n = len(state.history) + 1
    refs: dict[str, str] = {}
    for name, sha in commits.items():
        ref = history_ref(ctx.run_id, n, name)
        git(ctx.repo, "update-ref", "-m", "agentwaves: history", ref, sha)
        refs[ref] = sha
    if refs:
        state.history.append(HistoryEntry(n=n, reason=reason, created=now_iso(), refs=refs))


def recommit_wave(
    ctx: RunContext,
    cond: threading.Condition,
    ref: str,
    wave: Wave,
    old: str,
    joined: list[str],
    held: list[str],
    errors: dict[str, str],
    heads: dict[str, str],
) -> bool:
    """Replace wave commit ``old`` by one of only the ``joined`` groups (at ``heads`` where repaired);
    ``held`` fail with ``errors``. The new heads, the held groups and the pending rebuild are saved in
    one state write, before any ref moves.

    False (nothing changed) if the joined groups do not merge without the resolver."""
    repo = ctx.repo
    parent = git(repo, "rev-parse", f"{old}^1")
    state = ctx.store.state
    with cond:
        groups = {g.name: state.group(g.name) for g in wave.groups}
    branches = [Branch(n, heads.get(n) or groups[n].head or "", groups[n].base or parent) for n in joined]
    _, tree, conflicts = stack(repo, parent, branches)
    if conflicts:
        return False
    reason = (
        f"wave {wave.index} committed without {', '.join(held)}" if held else f"wave {wave.index} repaired"
    )
    with cond:
        ws = state.wave(wave.index)
        for name, head in heads.items():
            groups[name].head = head
        for name in held:
            gs = groups[name]
            gs.state, gs.error = "failed", errors[name]
            ctx.events.emit("group_failed", group=name, error=gs.error, logs=[])
        ws.held = list(held)
        state.rebuild = Rebuild(from_wave=wave.index, parent=parent, reason=reason)
        ctx.store.save()
        crashpoint("before recommit")
        keep_history(ctx, reason, {f"wave-{wave.index}": old})
        kept = Wave(wave.index, [g for g in wave.groups if g.name in joined])
        message = wave_message(ctx, kept)
    new = commit_tree(repo, tree, [parent], message)
    update_ref(repo, ref, new, old)
    crashpoint("after recommit")
    with cond:
        ws.commit, state.rebuild = new, None
        ctx.store.save()
    ctx.events.emit("wave_recommitted", wave=wave.index, commit=new, groups=joined, held=held)
    return True


def rewind(ctx: RunContext, ref: str, rebuild: Rebuild) -> None:
    """Carry out ``rebuild``: keep the replaced commits, move ``ref`` to its parent, and set its waves
    (and their gates) back to pending so that the executor merges and checks them again."""
    state = ctx.store.state
    head = git(ctx.repo, "rev-parse", "--verify", "-q", ref, check=False)
    commits = {f"wave-{w.index}": w.commit for w in state.waves if w.index >= rebuild.from_wave and w.commit}
    if head and head != rebuild.parent:
        commits["head"] = head
    keep_history(ctx, rebuild.reason or f"rebuild from wave {rebuild.from_wave}", commits)
    if head != rebuild.parent:
        update_ref(ctx.repo, ref, rebuild.parent, head or None)
    crashpoint("after rewind")
    for ws in state.waves:
        if ws.index < rebuild.from_wave:
            continue
        ws.state, ws.commit, ws.finished, ws.held = "pending", None, None, []
        for gs in ws.groups:
            if gs.tasks and gs.tasks[0].kind == "gate":
                gs.state = "pending"
                for ts in gs.tasks:
                    ts.state, ts.error = "pending", None
            elif gs.state == "failed" and all(t.state == "done" for t in gs.tasks):
                gs.state, gs.error = "done", None
    state.rebuild = None
    ctx.store.save()


def prepare_resume(ctx: RunContext, ref: str, lock: threading.RLock | None = None) -> None:
    """Before recovery: finish a rebuild a crash interrupted, or rebuild a wave holding groups back."""
    with lock or nullcontext():
        state = ctx.store.state
        rebuild = state.rebuild
        if rebuild is None:
            held = [w for w in state.waves if w.held and w.commit]
            if not held:
                return
            w = held[0]
            parent = git(ctx.repo, "rev-parse", f"{w.commit}^1")
            rebuild = Rebuild(
                from_wave=w.index, parent=parent, reason=f"resume: wave {w.index} with {', '.join(w.held)}"
            )
        rewind(ctx, ref, rebuild)
