"""Running one task (an implementer agent in its group's worktree) or one gate (a command)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agentwaves.agents.backend import TaskRequest
from agentwaves.agents.loop import AgentFailed, Limits, Transcript
from agentwaves.agents.records import MAX_LISTED_FILES
from agentwaves.errors import AgentwavesError
from agentwaves.git.ops import STATE_DIR, GitError, commit_all, git, identity_args, literal_pathspecs
from agentwaves.llm.base import LLMError, Usage
from agentwaves.llm.usage import usage_json
from agentwaves.plan.globs import overlaps, parse_entry
from agentwaves.plan.model import Task
from agentwaves.run.context import BudgetReached, RunContext, RunHooks
from agentwaves.run.feedback.gates import GATE_OUTPUT_CAP, GATE_TIMEOUT, GateRun, execute_gate
from agentwaves.run.leases.fallback import live_guard, run_checked
from agentwaves.sandbox.bwrap import NoSandbox, Sandbox
from agentwaves.state.crash import crashpoint
from agentwaves.state.store import Handoff, TaskState, atomic_write, now_iso

TASK_TRAILER = "Agentwaves-Task"
__all__ = ["GATE_OUTPUT_CAP", "GATE_TIMEOUT"]


@dataclass
class GroupRuntime:
    """A group's live worktree, shared by its tasks; ``git_lock`` makes one git writer at a time."""

    name: str
    worktree: Path
    port: int
    git_lock: threading.Lock
    running: int = 0
    exclude: list[str] = field(default_factory=list)  # copied untracked files: never committed
    head: str | None = None  # the worktree's HEAD after the last task commit (set under git_lock)
    clean: bool = False  # the files are exactly ``head``: the last commit staged every change, none since
    unknown_writes: bool = False  # a task ran a command or failed: the next commit must scan everything

    @property
    def untouched(self) -> bool:
        """Nothing in the worktree differs from ``head``: clean, and no copied or setup-made files."""
        return self.clean and self.exclude == [STATE_DIR]


def task_commit_message(ctx: RunContext, task: Task, handoff: Handoff) -> str:
    body = handoff.summary.strip()
    return (
        f"task {task.id}: {task.title}\n\n{body}\n\nAgentwaves-Run: {ctx.run_id}\n{TASK_TRAILER}: {task.id}\n"
    )


def undeclared_writes(task: Task, files: list[str]) -> list[str]:
    if not task.files:
        return []
    declared = [parse_entry(p) for p in task.files]
    return sorted(f for f in files if not any(overlaps(d, parse_entry(f)) for d in declared))


def dependency_handoffs(ctx: RunContext, task: Task) -> list[Handoff]:
    out = []
    for dep in task.depends_on:
        ts = ctx.store.state.task(dep)
        if ts.handoff is not None:
            out.append(ts.handoff)
    return out


def mark_started(ctx: RunContext, task_id: str) -> TaskState:
    """Record a new attempt of ``task_id``: running, attempts + 1, fresh start time, no error."""
    with ctx.store.lock:
        ts = ctx.store.state.task(task_id)
        ts.state, ts.attempts, ts.started, ts.finished, ts.error = (
            "running",
            ts.attempts + 1,
            now_iso(),
            None,
            None,
        )
        ctx.store.save()
        return ts


def run_task(
    ctx: RunContext,
    task: Task,
    group: GroupRuntime,
    sandbox: Sandbox,
    wave_notes: str,
    agent_done: Callable[[], None] = lambda: None,
) -> None:
    """Run ``task`` to completion and commit its work on the group branch; record failure otherwise.

    Never raises for task failures: the state says ``failed`` with the reason. A :class:`BudgetReached`
    puts the task back to ``pending`` and asks the run to stop. ``agent_done`` is called as the agent
    finishes (sent back or not), before the commit.
    """
    store = ctx.store
    ts = mark_started(ctx, task.id)
    attempt = ts.attempts
    ctx.events.emit("task_started", task=task.id, group=group.name, attempt=attempt)
    env = {"AGENTWAVES_PORT": str(group.port), "AGENTWAVES_TASK": task.id}
    guard = live_guard(ctx, task.id, group.name)
    fresh = group.untouched and group.running <= 1  # nothing in the worktree to tell from its writes
    group.clean = False
    hooks = RunHooks(ctx, task.id)
    transcript = Transcript(ctx.log_path(task.id), ctx.redactor)
    transcript.write("attempt", attempt)
    try:
        exact = False
        try:
            outcome = run_checked(
                ctx,
                task.id,
                group.name,
                group.git_lock,
                group.worktree,
                guard is not None,
                fresh,
                lambda sent_back: ctx.backend.implement(
                    TaskRequest(
                        task=task,
                        worktree=group.worktree,
                        sandbox=sandbox,
                        events=hooks,
                        transcript=transcript,
                        feature=ctx.plan.feature,
                        repo_map=ctx.repo_map,
                        handoffs=dependency_handoffs(ctx, task),
                        wave_notes="\n\n".join(n for n in (wave_notes, sent_back) if n),
                        attempt=attempt,
                        limits=Limits(ctx.config.max_turns, ctx.config.max_task_tokens),
                        env=env,
                        run_timeout=ctx.config.run_timeout,
                        stuck_after=ctx.config.stuck_after,
                        budget_left_usd=hooks.budget_left(),
                        write_guard=guard,
                    )
                ),
            )
            exact = outcome.exact
            agent_done()
        finally:  # a failed task's writes stay uncommitted in the worktree
            group.unknown_writes |= not exact
        handoff = outcome.handoff
        atomic_write(ctx.handoff_path(task.id), handoff.model_dump_json(indent=1))
        with group.git_lock:
            alone = group.running <= 1
            message = task_commit_message(ctx, task, handoff)
            sha = commit_task(group, message, outcome.written, alone)
            group.head, group.clean = sha, alone
    except BudgetReached as exc:
        ctx.stop_reason = str(exc)
        ctx.stop.set()
        with store.lock:
            ts.state, ts.error = "pending", str(exc)
            # what this attempt spent counts on resume too (else a resume could exceed the budget)
            ts.usage = task_usage(ctx, task.id)
            store.save()
        ctx.events.emit("task_stopped", task=task.id, reason=str(exc))
        return
    except (AgentFailed, LLMError, GitError, AgentwavesError, OSError) as exc:
        reason = ctx.redactor.redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        transcript.write("failed", reason)
        with store.lock:
            ts.state, ts.finished, ts.error = "failed", now_iso(), reason
            ts.usage = task_usage(ctx, task.id)
            store.save()
        ctx.events.emit("task_failed", task=task.id, group=group.name, error=reason)
        return
    every = undeclared_writes(task, outcome.all_files or handoff.files)
    undeclared = every[:MAX_LISTED_FILES]  # bounded: a million files never reach state or events
    with store.lock:
        ts.state, ts.finished, ts.commit, ts.handoff = "done", now_iso(), sha, handoff
        ts.files_written, ts.undeclared, ts.undeclared_total = handoff.files, undeclared, len(every)
        ts.usage = task_usage(ctx, task.id)
        store.save()
    if undeclared:
        ctx.events.emit("undeclared_writes", task=task.id, files=undeclared)
    ctx.events.emit("task_done", task=task.id, group=group.name, commit=sha, files=handoff.files)


def task_usage(ctx: RunContext, task_id: str) -> dict[str, object]:
    """The task's tokens and cost so far (as priced when recorded), as stored in its state."""
    usage = ctx.tracker.by_scope().get(task_id) or Usage()
    return usage_json(ctx.model, usage, cost=ctx.tracker.cost(task_id), known=ctx.tracker.known(task_id))


def commit_task(group: GroupRuntime, message: str, paths: list[str], alone: bool) -> str:
    """Commit the task's work on the group branch (under ``group.git_lock``).

    ``alone`` (no sibling task of the group is writing in the worktree): every change but the copied
    untracked files. Unless a task ran a command or failed since the last such commit, the tools'
    ``paths`` are all the changes and only they are staged; else the whole worktree is scanned. Not
    alone: only ``paths`` (the sibling commits its own work)."""
    worktree, exclude = group.worktree, group.exclude
    crashpoint("before task commit")
    if alone:
        known = None if group.unknown_writes else paths
        sha = commit_all(worktree, message, allow_empty=True, exclude=exclude, paths=known)
        group.unknown_writes = False
    else:
        staged = sorted(set(paths) - set(exclude))
        if staged:
            git(worktree, "add", "-A", "--", *literal_pathspecs(staged))
        git(
            worktree,
            *identity_args(worktree),
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "--allow-empty",
            "--no-verify",
            "-F",
            "-",
            input=message,
        )
        sha = None
    crashpoint("after task commit")
    return sha or git(worktree, "rev-parse", "HEAD")


def run_gate(ctx: RunContext, task: Task, integration: Path, sandbox: Sandbox | None = None) -> GateRun:
    """Run a gate's command in the integration worktree; save its output; record done or failed.

    The command runs like an agent's ``run``: in ``sandbox``, through the same process runner, with the
    environment of the shell that started agentwaves minus secrets, and no network unless ``gate_network``.
    """
    store = ctx.store
    ts = mark_started(ctx, task.id)
    ctx.events.emit("gate_started", task=task.id, command=task.command)
    log = ctx.log_path(task.id)
    log.parent.mkdir(parents=True, exist_ok=True)
    baseline = (store.state.baseline or {}).get(task.id)
    result = execute_gate(ctx.config, task, integration, sandbox or NoSandbox(), baseline)
    code = result.exit_code
    log.write_text(ctx.redactor.redact(f"$ {result.command}\n{result.output}\n[exit {code}]\n"))
    ok = result.ok
    with store.lock:
        ts.state, ts.finished = ("done" if ok else "failed"), now_iso()
        if not ok:
            ts.error = f"gate command `{task.command}` {result.why()}; output in {log}"
        store.save()
    ctx.events.emit("gate_done" if ok else "gate_failed", task=task.id, exit=code, log=str(log))
    return result
