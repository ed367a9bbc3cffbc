"""Running a finished task's agent again on top of its group branch: a repair or a revision.

The agent gets the task's prompt, then what it did (its handoff, and for a revision its diff), then the
feedback (a gate's output, a review comment). Its work is one more commit on the group branch with its
own trailer (``Agentwaves-Repair`` or ``Agentwaves-Revision``), never ``Agentwaves-Task``: the task's
own commit stays the one resume and the reviews count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agentwaves.agents.backend import TaskRequest
from agentwaves.agents.loop import AgentFailed, Limits, Transcript
from agentwaves.errors import AgentwavesError
from agentwaves.git.ops import GitError, commit_all, git
from agentwaves.git.pool import WorktreePool
from agentwaves.git.worktrees import group_branch
from agentwaves.llm.base import LLMError
from agentwaves.run.context import RunContext, RunHooks
from agentwaves.run.taskrun import dependency_handoffs, task_usage
from agentwaves.sandbox.bwrap import Sandbox
from agentwaves.state.crash import crashpoint
from agentwaves.state.store import atomic_write

MAX_DIFF = 8000


@dataclass
class Rerun:
    commit: str | None
    cost_usd: float
    error: str | None = None


def task_diff(repo: Path, commit: str | None) -> str:
    if not commit:
        return ""
    text = git(repo, "show", "--format=", "--patch", "--no-color", commit, check=False) or ""
    return text if len(text) <= MAX_DIFF else text[:MAX_DIFF] + "\n[... diff truncated]"


def rerun_task(
    ctx: RunContext,
    task_id: str,
    group: str,
    head: str,
    feedback: str,
    *,
    kind: str,
    number: int,
    pool: WorktreePool,
    sandbox: Sandbox,
) -> Rerun:
    """Run ``task_id``'s agent with ``feedback`` on ``group``'s branch at ``head``; commit on it.

    ``kind`` is ``repair`` or ``revision``; ``number`` counts them (the fake backend's script key).
    Never raises for the agent's failure: :attr:`Rerun.error` says why."""
    task = ctx.plan.task(task_id)
    with ctx.store.lock:
        ts = ctx.store.state.task(task_id)
        ts.attempts += 1
        attempt = ts.attempts
        handoff = ts.handoff
        ctx.store.save()
    parts = [task.effective_prompt.strip(), "", "# What you did"]
    if handoff is not None:
        parts += [handoff.summary.strip(), f"Notes: {handoff.notes.strip()}" if handoff.notes.strip() else ""]
        if handoff.files:
            parts.append("Files: " + ", ".join(handoff.files))
    if kind == "revision":
        parts += ["", "Your diff:", "```diff", task_diff(ctx.repo, ts.commit), "```"]
    parts += ["", feedback.strip()]
    prompted = task.model_copy(update={"prompt": "\n".join(p for p in parts if p is not None)})
    name = f"{kind}-{group}"
    worktree = pool.acquire(name, group_branch(ctx.run_id, group), head)
    scope_cost = ctx.tracker.cost(task_id)
    transcript = Transcript(ctx.log_path(f"{task_id}.{kind}-{number}"), ctx.redactor)
    transcript.write("attempt", attempt)
    try:
        leftovers = sorted(
            p for p in git(worktree, "ls-files", "-z", "--others", "--exclude-standard").split("\0") if p
        )
        env = {"AGENTWAVES_TASK": task_id}
        hooks = RunHooks(ctx, task_id)
        try:
            outcome = ctx.backend.implement(
                TaskRequest(
                    task=prompted,
                    worktree=worktree,
                    sandbox=sandbox,
                    events=hooks,
                    transcript=transcript,
                    feature=ctx.plan.feature,
                    repo_map=ctx.repo_map,
                    handoffs=dependency_handoffs(ctx, task),
                    attempt=attempt,
                    limits=Limits(ctx.config.max_turns, ctx.config.max_task_tokens),
                    env=env,
                    run_timeout=ctx.config.run_timeout,
                    stuck_after=ctx.config.stuck_after,
                    budget_left_usd=hooks.budget_left(),
                    hints={kind: number},
                )
            )
        except (AgentFailed, LLMError, AgentwavesError, OSError) as exc:
            reason = ctx.redactor.redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            transcript.write("failed", reason)
            return Rerun(None, _spent(ctx, task_id, scope_cost), reason)
        atomic_write(
            ctx.handoff_path(f"{task_id}.{kind}-{number}"), outcome.handoff.model_dump_json(indent=1)
        )
        trailer = "Agentwaves-Repair" if kind == "repair" else "Agentwaves-Revision"
        message = (
            f"{kind} {number} of task {task_id}: {outcome.handoff.summary.strip()[:200]}\n\n"
            f"Agentwaves-Run: {ctx.run_id}\n{trailer}: {task_id}\n"
        )
        crashpoint(f"before {kind} commit")
        try:
            sha = commit_all(worktree, message, allow_empty=True, exclude=leftovers)
        except GitError as exc:
            return Rerun(None, _spent(ctx, task_id, scope_cost), str(exc).splitlines()[0])
        crashpoint(f"after {kind} commit")
        return Rerun(sha or git(worktree, "rev-parse", "HEAD"), _spent(ctx, task_id, scope_cost))
    finally:
        pool.release(worktree)


def _spent(ctx: RunContext, task_id: str, before: float) -> float:
    with ctx.store.lock:
        ctx.store.state.task(task_id).usage = task_usage(ctx, task_id)
        ctx.store.save()
    return round(ctx.tracker.cost(task_id) - before, 6)
