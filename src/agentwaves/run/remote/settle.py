"""A remote task's outcome, recorded here as :func:`agentwaves.run.taskrun.run_task` records a local one:
transcript into the run's log, commit verified and imported onto the group branch, state and events."""

from __future__ import annotations

import tempfile
from pathlib import Path

from agentwaves.errors import AgentwavesError
from agentwaves.git.ops import GitError
from agentwaves.plan.model import Task
from agentwaves.run.context import RunContext
from agentwaves.run.remote.spec import TaskResult
from agentwaves.run.remote.transport import import_task_bundle
from agentwaves.run.taskrun import GroupRuntime, task_usage, undeclared_writes
from agentwaves.state.store import Handoff, atomic_write, now_iso


def record_result(
    ctx: RunContext, task: Task, rt: GroupRuntime, branch: str, result: TaskResult, streamed: int = 0
) -> None:
    """Never raises for a task failure: the state says ``failed`` with the reason. ``streamed``: the
    characters of ``result.transcript`` already appended to the task's log as they came."""
    store = ctx.store
    rest = result.transcript[streamed:]
    if rest:
        log = ctx.log_path(task.id)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(ctx.redactor.redact(rest))
    ts = store.state.task(task.id)
    if result.status == "stopped":
        ctx.stop_reason = result.error or "stopped"
        ctx.stop.set()
        with store.lock:
            ts.state, ts.error, ts.usage = "pending", result.error, task_usage(ctx, task.id)
            store.save()
        ctx.events.emit("task_stopped", task=task.id, reason=result.error)
        return
    sha = None
    if result.status == "done" and result.bundle is not None and result.handoff is not None:
        handoff = Handoff.model_validate(result.handoff)
        try:
            sha = _import(ctx, task, rt, branch, result.bundle)
        except (GitError, AgentwavesError, OSError) as exc:
            result.status, result.error = "failed", ctx.redactor.redact(str(exc).splitlines()[0])
    if sha is None:
        reason = ctx.redactor.redact(result.error or "the node returned no commit")
        with store.lock:
            ts.state, ts.finished, ts.error = "failed", now_iso(), reason
            ts.usage = task_usage(ctx, task.id)
            store.save()
        ctx.events.emit("task_failed", task=task.id, group=rt.name, error=reason, node=result.node)
        return
    atomic_write(ctx.handoff_path(task.id), handoff.model_dump_json(indent=1))
    undeclared = undeclared_writes(task, handoff.files)
    with store.lock:
        ts.state, ts.finished, ts.commit, ts.handoff = "done", now_iso(), sha, handoff
        ts.files_written, ts.undeclared = handoff.files, undeclared
        ts.usage = task_usage(ctx, task.id)
        store.save()
    if undeclared:
        ctx.events.emit("undeclared_writes", task=task.id, files=undeclared)
    ctx.events.emit(
        "task_done", task=task.id, group=rt.name, commit=sha, files=handoff.files, node=result.node
    )


def _import(ctx: RunContext, task: Task, rt: GroupRuntime, branch: str, bundle: bytes) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "task.bundle"
        path.write_bytes(bundle)
        with rt.git_lock:
            sha = import_task_bundle(ctx.repo, path, branch, rt.head or "", task.id)
            rt.head = sha
    return sha
