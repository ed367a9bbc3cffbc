"""Starting and resuming runs: the one function each of ``execute`` and ``resume`` calls.

Order matters for safety: everything that can fail on bad input (plan, config, LLM key, lock) fails
before the run exists; once it exists, every change is in ``state.json`` and the run can be resumed.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentwaves.agents.backend import BackendSetup, make_backend
from agentwaves.agents.repomap import repo_map
from agentwaves.config import Config, load_config
from agentwaves.errors import AgentwavesError, UsageError
from agentwaves.git.ops import current_branch, ensure_state_dir, find_repo_root, head_sha, is_dirty
from agentwaves.git.pool import WorktreePool
from agentwaves.git.worktrees import add_worktree, integration_branch, prune, remove_worktree
from agentwaves.llm.base import RetryableError
from agentwaves.llm.usage import UsageTracker, usage_json
from agentwaves.plan import Analysis, analyze
from agentwaves.plan.load import dump_plan_yaml, load_plan
from agentwaves.plan.model import Plan
from agentwaves.redact import Redactor
from agentwaves.run.context import RunContext, Slots
from agentwaves.run.executor import Executor
from agentwaves.run.feedback.gates import run_baseline
from agentwaves.run.interrupt import interrupts, record_interrupted
from agentwaves.run.report import run_summary, write_report
from agentwaves.run.resume.verify import check_snapshot, verify_recorded
from agentwaves.sandbox.bwrap import resolve_sandbox
from agentwaves.sandbox.homes import sweep_stale_homes
from agentwaves.state.events import EventLog, Subscriber
from agentwaves.state.history import append_run, planner_model_of, run_records
from agentwaves.state.initial import initial_state, run_settings
from agentwaves.state.pins import Pins
from agentwaves.state.store import (
    RepoLock,
    RunState,
    StateStore,
    atomic_write,
    new_run_id,
    now_iso,
    read_state,
    resolve_run_dir,
    runs_dir,
)

DEFAULT_PLAN = Path(".agentwaves/plan.yaml")


@dataclass
class RunOutcome:
    state: RunState
    run_dir: Path
    warnings: list[str]
    summary: dict[str, Any]
    note: str | None = None  # e.g. "already done": said instead of running
    exit_code: int = 1  # when not ok: 1, or 128 + the signal after an interrupt (130, 143)

    @property
    def ok(self) -> bool:
        return self.state.state == "done"


def start_run(
    repo: Path, plan_path: Path | None, overrides: dict[str, Any], subscribers: Sequence[Subscriber] = ()
) -> RunOutcome:  # type: ignore[assignment]
    """Execute a plan on ``repo`` from its current HEAD, on a new integration branch."""
    root = find_repo_root(repo)
    config = load_config(root, overrides)
    path = plan_path or root / DEFAULT_PLAN
    if not path.exists():
        raise UsageError(f'no plan at {path}: run `agentwaves plan "FEATURE"` first, or pass --plan FILE')
    plan = load_plan(path)
    planner_model = None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        planner_model = planner_model_of(path.read_text(encoding="utf-8")[:500])
    state_dir = ensure_state_dir(root)
    warnings = []
    if is_dirty(root):
        warnings.append(
            "the working tree has uncommitted changes: they are not part of the run "
            "(the run starts from HEAD)"
        )
    run_id = new_run_id()
    run_dir = runs_dir(state_dir) / run_id

    def create(analysis: Analysis) -> StateStore:
        state = initial_state(
            run_id, root, plan, analysis, head_sha(root), run_settings(config), config.base_port
        )
        state.planner_model = planner_model
        atomic_write(run_dir / "plan.yaml", dump_plan_yaml(plan))  # before the state: resume needs it
        return StateStore.create(run_dir, state)

    return _execute(root, state_dir, config, plan, create, warnings, subscribers)


def resume_run(
    repo: Path, run_id: str | None, overrides: dict[str, Any], subscribers: Sequence[Subscriber] = ()
) -> RunOutcome:  # type: ignore[assignment]
    """Continue a failed or interrupted run: finished work is kept, the rest runs again."""
    root = find_repo_root(repo)
    state_dir = ensure_state_dir(root)
    run_dir = resolve_run_dir(state_dir, run_id)
    previous = read_state(run_dir)
    warnings: list[str] = []
    if previous.state == "done":  # e.g. killed while cleaning up after its last commit
        with RepoLock(state_dir) as lock:
            lock.acquire(previous.run_id)
            warnings += verify_recorded(root, previous)
            if warnings:  # its work is no longer all in git: resume for real
                StateStore(run_dir, previous).save()
            else:
                _remove_run_worktrees(root, state_dir, previous.run_id)
                config = load_config(root, {"llm": previous.settings.llm})
                note = f"run {previous.run_id} is already done: nothing to resume"
                return RunOutcome(previous, run_dir, [], run_summary(previous, config), note=note)
    saved = previous.settings.model_dump()
    merged = {**saved, **{k: v for k, v in overrides.items() if v is not None}}
    config = load_config(root, {k: v for k, v in merged.items() if k in Config.model_fields})
    plan = load_plan(run_dir / "plan.yaml")

    def reopen(analysis: Analysis) -> StateStore:
        store = StateStore(run_dir, read_state(run_dir))
        check_snapshot(run_dir / "plan.yaml", analysis, store.state)
        warnings.extend(verify_recorded(root, store.state))
        store.state.settings = run_settings(config)
        store.state.error = None
        return store

    return _execute(root, state_dir, config, plan, reopen, warnings, subscribers)


def _execute(
    root: Path,
    state_dir: Path,
    config: Config,
    plan: Plan,
    open_store: Callable[[Analysis], StateStore],
    warnings: list[str],
    subscribers: Sequence[Subscriber],
) -> RunOutcome:
    analysis = analyze(plan, max_agents=config.max_agents)
    sweep_stale_homes()  # private HOMEs a crashed run left behind
    # bubblewrap's probes run while the backend checks its agent (e.g. `claude --version`): both start
    # processes and wait for them
    probing = ThreadPoolExecutor(1, thread_name_prefix="agentwaves-probe")
    probe = probing.submit(resolve_sandbox, config.sandbox)
    probing.shutdown(wait=False)  # the probe still runs; nothing else is submitted
    slots = Slots(config.max_agents)
    holder: dict[str, Any] = {}
    redactor = Redactor()

    def on_retry(error: RetryableError, attempt: int, wait: float) -> None:
        events = holder.get("events")
        if error.kind == "rate_limit":
            capacity = slots.rate_limited()
            if events:
                events.emit("concurrency", capacity=capacity, reason="rate limited")
        store = holder.get("store")
        if store is not None and error.task:
            with store.lock, contextlib.suppress(KeyError):
                store.state.task(error.task).retries += 1  # saved with the next state write
        if events:
            events.emit(
                "retry",
                task=error.task,
                kind=error.kind,
                attempt=attempt,
                wait_s=round(wait, 2),
                error=redactor.redact(str(error)),
            )

    try:
        backend = make_backend(BackendSetup(config, on_retry=on_retry))
    finally:
        sandbox, sandbox_warning = probe.result()
    if sandbox_warning:
        warnings.append(sandbox_warning)
    remote = None
    if config.executor == "ray":  # before the run exists: no Ray, or no cluster, is a one-line error
        from agentwaves.run.remote.runner import connect

        remote = connect(config)
        warnings += remote.check_nodes(config, backend.name, sandbox)  # no node can run it: exit 2
    lock = RepoLock(state_dir)
    lock.acquire("pending")
    try:
        store = open_store(analysis)
        run_dir = store.run_dir
        events = EventLog(run_dir / "events.jsonl")
        holder["events"] = events
        holder["store"] = store
        for fn in subscribers:
            events.subscribe(fn)
        run_id = store.state.run_id
        pins = Pins(root, run_id)  # every commit the state records keeps a ref until `clean`
        store.before_save = pins.sync
        pins.sync(store.state)
        lock.release()
        lock.acquire(run_id)
        tracker = UsageTracker()
        _restore_usage(store.state, tracker, backend.model)
        ctx = RunContext(
            repo=root,
            run_dir=run_dir,
            store=store,
            plan=plan,
            analysis=analysis,
            config=config,
            backend=backend,
            events=events,
            tracker=tracker,
            slots=slots,
            repo_map=repo_map(root) if getattr(backend, "wants_repo_map", False) is True else "",
        )
        wt_root = state_dir / "worktrees" / run_id
        integration = add_worktree(
            root, wt_root / "_integration", integration_branch(run_id), store.state.base
        )
        pool = WorktreePool(
            root,
            wt_root,
            copy_files=config.copy_files,
            setup=config.setup,
            setup_timeout=config.setup_timeout,
            sandbox=sandbox,
            setup_network=config.setup_network,
            setup_writable=[Path(p).expanduser() for p in config.setup_writable],
        )
        store.state.pid = None
        if store.state.baseline is None:  # once per run, before any wave: what already fails on the base
            store.state.baseline, failing = run_baseline(
                config,
                [t for t in plan.tasks if t.is_gate],
                root,
                store.state.base,
                wt_root / "_base",
                sandbox,
            )
            warnings.extend(failing)
            store.save()
        events.emit(
            "run_started",
            run=run_id,
            run_dir=str(run_dir),
            schedule=config.schedule,
            max_agents=config.max_agents,
            llm=config.llm,
            agent=config.agent,
            branch=store.state.branch,
            base=store.state.base,
            user_branch=current_branch(root),
            warnings=warnings,
        )
        t0 = time.monotonic()
        with interrupts(ctx):
            runner = None
            try:
                runner = remote.runner(ctx, sandbox) if remote is not None else None
                Executor(ctx, pool, sandbox, integration, runner=runner).run()
            finally:
                # the outcome is recorded before any clean-up, which may fail (a path git cannot remove)
                # and must never leave a finished run looking interrupted
                _finish(ctx, time.monotonic() - t0)
                _record_history(ctx, state_dir)
                if ctx.interrupted is not None:  # an agent thread not waited for must not change it
                    store.sealed = True
                if runner is not None:
                    _cleanup(warnings, runner.close)
                _cleanup(warnings, pool.close)
            if store.state.state == "done":
                _cleanup(warnings, lambda: _remove_run_worktrees(root, state_dir, run_id))
            summary = run_summary(store.state, config)
            events.emit(
                "run_finished", run=run_id, state=store.state.state, error=store.state.error, summary=summary
            )
            events.close()
            with contextlib.suppress(OSError, AgentwavesError):
                write_report(run_dir)
        code = 128 + ctx.interrupted if ctx.interrupted is not None else 1
        return RunOutcome(store.state, run_dir, warnings, summary, exit_code=code)
    finally:
        lock.release()


def _cleanup(warnings: list[str], step: Callable[[], None]) -> None:
    """Run a clean-up step; a failure is a warning (the worktree stays for `clean`), never the outcome."""
    try:
        step()
    except (AgentwavesError, OSError) as exc:
        warnings.append(f"clean-up incomplete, `agentwaves clean` retries it: {str(exc).splitlines()[0]}")


def _record_history(ctx: RunContext, state_dir: Path) -> None:
    """Append the run's finished tasks to ``.agentwaves/history.jsonl`` (never fails the run)."""
    summary = run_summary(ctx.store.state, ctx.config)
    records = run_records(
        ctx.store.state,
        ctx.plan,
        seconds_per_minute=summary["seconds_per_plan_minute"],
        model=ctx.model,
        planner_model=ctx.store.state.planner_model,
    )
    with contextlib.suppress(OSError):
        append_run(state_dir, records)


def _remove_run_worktrees(root: Path, state_dir: Path, run_id: str) -> None:
    wt_root = state_dir / "worktrees" / run_id
    if (wt_root / "_integration").exists():
        remove_worktree(root, wt_root / "_integration")
    shutil.rmtree(wt_root, ignore_errors=True)
    prune(root, under=wt_root)


def _restore_usage(state: RunState, tracker: UsageTracker, model: str) -> None:
    from agentwaves.llm.base import Usage

    recorded = [(ts.id, ts.usage) for ts in state.tasks()] + list(state.scope_usage.items())
    for scope, usage in recorded:
        if usage:
            fields = {k: usage.get(k, 0) for k in Usage.model_fields}
            cost, known = usage.get("cost_usd"), usage.get("cost_known") is not False
            cost = None if cost is None else float(cost)
            # as recorded: an unknown cost stays unknown (never repriced as the resuming model)
            tracker.add(scope, model, Usage(**fields), cost=cost, known=known)


def _finish(ctx: RunContext, elapsed: float) -> None:
    state = ctx.store.state
    with ctx.store.lock:
        state.makespan_s = round((state.makespan_s or 0.0) + elapsed, 3)
        state.finished = now_iso()
        known = ctx.tracker.all_known()
        state.usage = usage_json(ctx.model, ctx.tracker.total(), cost=ctx.tracker.cost(), known=known)
        if all(w.state == "done" for w in state.waves):
            state.state, state.error = "done", None
        elif ctx.interrupted is not None:
            record_interrupted(state, ctx.stop_reason)
        elif ctx.stop.is_set():
            state.state, state.error = "stopped", ctx.stop_reason
        else:
            state.state = "failed"
            failed = [g for w in state.waves for g in w.groups if g.state == "failed"]
            state.error = (
                "failed groups: " + ", ".join(g.name for g in failed)
                if failed
                else "the run could not continue"
            )
        ctx.store.save()
