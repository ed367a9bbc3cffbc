"""Resume after a crash: bring a run's state in line with what git holds.

Git is the truth for finished work. A wave commit on the integration branch (found by its
``Agentwaves-Run``/``Agentwaves-Wave`` trailers) means the wave is done, even if the process died before
saying so in ``state.json``; a task commit on a group branch (``Agentwaves-Task`` trailer) means the task
is done. Everything else that was running or failed goes back to pending and runs again.
"""

from __future__ import annotations

from agentwaves.git.merge import find_wave_commit
from agentwaves.git.ops import git
from agentwaves.run.context import RunContext
from agentwaves.run.taskrun import TASK_TRAILER
from agentwaves.state.store import GroupState, Handoff, now_iso


def recover_state(ctx: RunContext, ref: str) -> None:
    """Adopt the wave and task commits that exist; set what did not finish back to pending; save."""
    state = ctx.store.state
    for wave in ctx.analysis.waves:
        ws = state.wave(wave.index)
        if ws.state != "done":
            found = find_wave_commit(ctx.repo, ref, ctx.run_id, wave.index)
            if found:
                ws.state, ws.commit = "done", found
        for group in wave.groups:
            gs = state.group(group.name)
            if ws.state == "done":
                gs.state = "done"
                for tid in group.tasks:
                    adopt_task(ctx, tid, None)
                continue
            if gs.branch:
                adopt_branch_tasks(ctx, gs, group.tasks)
            for tid in group.tasks:
                ts = state.task(tid)
                if ts.state in ("running", "failed"):
                    ts.state = "pending"
            if all(state.task(t).state == "done" for t in group.tasks):
                gs.state = "done"
                if gs.branch and not gs.head:
                    gs.head = branch_head(ctx, gs.branch)
            else:
                gs.state = "pending"
            gs.conflicts = []
        if ws.state != "done":
            ws.state = "pending"
    ctx.store.save()


def branch_head(ctx: RunContext, branch: str) -> str | None:
    return git(ctx.repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False) or None


def adopt_branch_tasks(ctx: RunContext, gs: GroupState, tasks: list[str]) -> None:
    """Mark done every task of the group whose commit is on the group branch."""
    head = branch_head(ctx, gs.branch)
    if not head or not gs.base:
        return
    fmt = f"--format=%H%x00%(trailers:key={TASK_TRAILER},valueonly)%x1e"
    log = git(ctx.repo, "log", fmt, f"{gs.base}..{head}", check=False) or ""
    for record in log.split("\x1e"):
        if "\x00" not in record:
            continue
        sha, tid = (part.strip() for part in record.split("\x00", 1))
        if tid in tasks and ctx.store.state.task(tid).state != "done":
            adopt_task(ctx, tid, sha)
    if all(ctx.store.state.task(t).state == "done" for t in tasks):
        gs.head = head


def adopt_task(ctx: RunContext, tid: str, sha: str | None) -> None:
    """Mark ``tid`` done, with its commit and the handoff it saved before committing."""
    ts = ctx.store.state.task(tid)
    if ts.state == "done":
        return
    ts.state, ts.finished = "done", ts.finished or now_iso()
    ts.commit = ts.commit or sha
    path = ctx.handoff_path(tid)
    if path.exists() and ts.handoff is None:
        try:
            ts.handoff = Handoff.model_validate_json(path.read_text())
            ts.files_written = ts.handoff.files
        except ValueError:
            pass
