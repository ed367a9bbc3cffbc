"""``agentwaves revise``, as the run carries it out: each pending revision's agent, then the waves rebuilt.

:func:`agentwaves.review.revise.request_revision` checks the request, records it (``TaskState.revisions``,
pending) and a :class:`~agentwaves.state.feedback.Rebuild` from the task's wave, then the CLI resumes the
run: recovery
rewinds the integration branch (the old wave commits stay under history refs, see
:mod:`agentwaves.run.feedback.rebuild`), :func:`run_pending_revisions` runs each pending revision's
agent on its group branch, and the executor merges that wave and every later one again and reruns their gates.
"""

from __future__ import annotations

from agentwaves.git.pool import WorktreePool
from agentwaves.run.context import RunContext
from agentwaves.run.feedback.rerun import rerun_task
from agentwaves.sandbox.bwrap import Sandbox
from agentwaves.state.feedback import Revision


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
