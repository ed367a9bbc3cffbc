"""``agentwaves revise``: a review comment sent back to a task's agent, and the waves rebuilt after it.

:func:`request_revision` checks the request, records it (``TaskState.revisions``, pending) and a
:class:`~agentwaves.run.fbstate.Rebuild` from the task's wave, then the CLI resumes the run: recovery
rewinds the integration branch (the old wave commits stay under history refs, see
:mod:`agentwaves.run.rebuild`), :func:`run_pending_revisions` runs each pending revision's agent on its
group branch, and the executor merges that wave and every later one again and reruns their gates.
"""

from __future__ import annotations

from pathlib import Path

from agentwaves.agents.sandbox import Sandbox
from agentwaves.errors import UsageError
from agentwaves.run.context import RunContext
from agentwaves.run.fbstate import Rebuild, Revision
from agentwaves.run.gitops import branch_exists
from agentwaves.run.inspect import is_live, open_run, read_landed
from agentwaves.run.rerun import rerun_task
from agentwaves.run.state import RepoLock, RunState, StateStore, now_iso
from agentwaves.run.worktrees import WorktreePool

MAX_COMMENT = 20_000


def _targets(state: RunState, task: str | None, wave: int | None) -> list[tuple[int, str, str]]:
    """(wave, group, task) of each task to revise."""
    if (task is None) == (wave is None):
        raise UsageError("give --task T or --wave N (one of them)")
    out = []
    for w in state.waves:
        for g in w.groups:
            kinds = [t.kind for t in g.tasks]
            if task is not None:
                out += [(w.index, g.name, t.id) for t in g.tasks if t.id == task]
            elif w.index == wave and "gate" not in kinds and g.tasks:
                out.append((w.index, g.name, g.tasks[-1].id))
    if task is not None and not out:
        raise UsageError(f"run {state.run_id} has no task {task!r}")
    if wave is not None and not out:
        raise UsageError(f"run {state.run_id} has no wave {wave} with tasks to revise")
    return out


def request_revision(repo: Path, run_id: str | None, task: str | None, wave: int | None, comment: str) -> str:
    """Record the revision of ``task`` (or of each group's last task of ``wave``); returns the run id."""
    comment = comment.strip()
    if not comment:
        raise UsageError("the comment is empty: say what to change")
    if len(comment) > MAX_COMMENT:
        raise UsageError(f"the comment is longer than {MAX_COMMENT} characters")
    ref = open_run(repo, run_id)
    state = ref.state
    if read_landed(ref.run_dir) is not None:
        raise UsageError(f"run {state.run_id} is landed: revise works before `land` only")
    if is_live(ref):
        raise UsageError(f"run {state.run_id} is executing: wait for it to finish, then revise")
    lock = RepoLock(ref.state_dir)
    lock.acquire(state.run_id)
    try:
        store = StateStore.load(ref.run_dir)
        state = store.state
        targets = _targets(state, task, wave)
        for w, g, t in targets:
            ts = state.task(t)
            if ts.kind == "gate":
                raise UsageError(f"{t} is a gate: revise a task instead")
            if ts.state != "done" or state.wave(w).state != "done":
                raise UsageError(f"task {t} is not committed yet: resume the run first")
            branch = state.group(g).branch
            if not branch or not branch_exists(ref.root, branch):
                raise UsageError(f"the branch of group {g} is gone (was the run cleaned?): cannot revise {t}")
        first = min(w for w, _, _ in targets)
        if state.rebuild is not None:
            first = min(first, state.rebuild.from_wave)
        parent = state.base if first == 1 else state.wave(first - 1).commit
        if not parent:
            raise UsageError(f"wave {first - 1} is not committed: resume the run first")
        for _, _, t in targets:
            ts = state.task(t)
            ts.revisions.append(Revision(n=len(ts.revisions) + 1, comment=comment, requested=now_iso()))
        reason = f"revise {', '.join(t for _, _, t in targets)}: {comment.splitlines()[0][:80]}"
        state.rebuild = Rebuild(from_wave=first, parent=parent, reason=reason)
        state.state = "pending"
        store.save()
        return state.run_id
    finally:
        lock.release()


def run_pending_revisions(ctx: RunContext, pool: WorktreePool, sandbox: Sandbox) -> None:
    """Run the agent of every pending revision on its group branch (wave order); update the group head."""
    state = ctx.store.state
    for wave in ctx.analysis.waves:
        for group in wave.groups:
            for tid in group.tasks:
                for rev in state.task(tid).revisions:
                    if rev.state != "pending":
                        continue
                    _revise(ctx, group.name, tid, rev, pool, sandbox)


def _revise(
    ctx: RunContext, group: str, tid: str, rev: Revision, pool: WorktreePool, sandbox: Sandbox
) -> None:
    gs = ctx.store.state.group(group)
    feedback = (
        "# A reviewer's comment on your work\n\n"
        f"{rev.comment}\n\nRevise your work on this branch accordingly (your earlier commit is in place), "
        "then finish with a summary of what you changed."
    )
    ctx.events.emit("revision_started", task=tid, group=group, n=rev.n)
    rerun = rerun_task(
        ctx, tid, group, gs.head or "", feedback, kind="revision", number=rev.n, pool=pool, sandbox=sandbox
    )
    with ctx.store.lock:
        rev.cost_usd, rev.commit, rev.error = rerun.cost_usd, rerun.commit, rerun.error
        rev.state = "done" if rerun.commit else "failed"
        if rerun.commit:
            gs.head = rerun.commit
        ctx.store.save()
    ctx.events.emit("revision_done", task=tid, group=group, n=rev.n, ok=bool(rerun.commit), error=rerun.error)
