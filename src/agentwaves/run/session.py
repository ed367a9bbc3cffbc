"""Starting and resuming runs: the one function each of ``execute`` and ``resume`` calls.

Order matters for safety: everything that can fail on bad input (plan, config, LLM key, lock) fails
before the run exists; once it exists, every change is in ``state.json`` and the run can be resumed.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentwaves.agents.homes import sweep_stale_homes
from agentwaves.agents.repomap import repo_map
from agentwaves.agents.sandbox import resolve_sandbox
from agentwaves.config import Config, load_config, retry_policy
from agentwaves.errors import AgentwavesError, UsageError
from agentwaves.llm.base import RetryableError
from agentwaves.llm.registry import make_llm
from agentwaves.llm.usage import UsageTracker, usage_json
from agentwaves.plan import Analysis, analyze
from agentwaves.plan.load import dump_plan_yaml, load_plan
from agentwaves.plan.model import Plan
from agentwaves.run.context import RunContext, Slots
from agentwaves.run.events import EventLog, Subscriber
from agentwaves.run.executor import Executor
from agentwaves.run.gates import run_baseline
from agentwaves.run.gitops import current_branch, ensure_state_dir, find_repo_root, head_sha, is_dirty
from agentwaves.run.report import write_report
from agentwaves.run.state import (
    GroupState,
    RepoLock,
    RunSettings,
    RunState,
    StateStore,
    TaskState,
    WaveState,
    atomic_write,
    new_run_id,
    now_iso,
    read_state,
    resolve_run_dir,
    runs_dir,
)
from agentwaves.run.worktrees import WorktreePool, add_worktree, integration_branch, prune, remove_worktree

DEFAULT_PLAN = Path(".agentwaves/plan.yaml")


@dataclass
class RunOutcome:
    state: RunState
    run_dir: Path
    warnings: list[str]
    summary: dict[str, Any]
    note: str | None = None  # e.g. "already done": said instead of running

    @property
    def ok(self) -> bool:
        return self.state.state == "done"


def initial_state(
    run_id: str, repo: Path, plan: Plan, analysis: Analysis, base: str, settings: RunSettings, base_port: int
) -> RunState:
    waves = []
    port = base_port
    for wave in analysis.waves:
        groups = []
        for group in wave.groups:
            tasks = [TaskState(id=t, title=plan.task(t).title, kind=plan.task(t).kind) for t in group.tasks]
            groups.append(GroupState(name=group.name, port=port, tasks=tasks))
            port += 1
        waves.append(WaveState(index=wave.index, groups=groups))
    est = analysis.estimates
    return RunState(
        run_id=run_id,
        repo=str(repo),
        feature=plan.feature,
        base=base,
        branch=integration_branch(run_id),
        settings=settings,
        waves=waves,
        estimates={
            "serial": est.serial,
            "groups_sequential": est.groups_sequential,
            "theoretical": est.theoretical,
            "practical": est.practical,
        },
        serialization_points=[{"tasks": p.tasks, "reason": p.reason} for p in analysis.serialization_points],
    )


def _settings_overrides(config: Config) -> RunSettings:
    return RunSettings(
        llm=config.llm,
        model=config.model,
        fake_script=config.fake_script,
        fake_time_scale=config.fake_time_scale,
        max_agents=config.max_agents,
        schedule=config.schedule,
        sandbox=config.sandbox,
        budget_usd=config.budget_usd,
    )


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
            run_id, root, plan, analysis, head_sha(root), _settings_overrides(config), config.base_port
        )
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
    if previous.state == "done":  # e.g. killed while cleaning up after its last commit
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
        store.state.settings = _settings_overrides(config)
        store.state.error = None
        return store

    return _execute(root, state_dir, config, plan, reopen, [], subscribers)


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
    sandbox, sandbox_warning = resolve_sandbox(config.sandbox)
    if sandbox_warning:
        warnings.append(sandbox_warning)
    slots = Slots(config.max_agents)
    holder: dict[str, Any] = {}

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
            events.emit("retry", task=error.task, kind=error.kind, attempt=attempt, wait_s=round(wait, 2))

    llm = make_llm(
        config.llm,
        model=config.model,
        fake_script=Path(config.fake_script) if config.fake_script else None,
        fake_time_scale=config.fake_time_scale,
        on_retry=on_retry,
        record=Path(config.record) if config.record else None,
        cache=config.prompt_cache,
        retry=retry_policy(config),
    )
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
        lock.release()
        lock.acquire(run_id)
        tracker = UsageTracker()
        _restore_usage(store.state, tracker, llm.model)
        ctx = RunContext(
            repo=root,
            run_dir=run_dir,
            store=store,
            plan=plan,
            analysis=analysis,
            config=config,
            llm=llm,
            events=events,
            tracker=tracker,
            slots=slots,
            repo_map=repo_map(root),
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
            branch=store.state.branch,
            base=store.state.base,
            user_branch=current_branch(root),
            warnings=warnings,
        )
        t0 = time.monotonic()
        try:
            Executor(ctx, pool, sandbox, integration).run()
        finally:
            elapsed = time.monotonic() - t0
            pool.close()
            _finish(ctx, elapsed)
        if store.state.state == "done":
            _remove_run_worktrees(root, state_dir, run_id)
        summary = run_summary(store.state, config)
        events.emit(
            "run_finished", run=run_id, state=store.state.state, error=store.state.error, summary=summary
        )
        events.close()
        with contextlib.suppress(OSError, AgentwavesError):
            write_report(run_dir)
        return RunOutcome(store.state, run_dir, warnings, summary)
    finally:
        lock.release()


def _remove_run_worktrees(root: Path, state_dir: Path, run_id: str) -> None:
    wt_root = state_dir / "worktrees" / run_id
    if (wt_root / "_integration").exists():
        remove_worktree(root, wt_root / "_integration")
    shutil.rmtree(wt_root, ignore_errors=True)
    prune(root)


def _restore_usage(state: RunState, tracker: UsageTracker, model: str) -> None:
    from agentwaves.llm.base import Usage

    for ts in state.tasks():
        if ts.usage:
            fields = {k: ts.usage.get(k, 0) for k in Usage.model_fields}
            tracker.add(ts.id, model, Usage(**fields))


def _finish(ctx: RunContext, elapsed: float) -> None:
    state = ctx.store.state
    with ctx.store.lock:
        state.makespan_s = round((state.makespan_s or 0.0) + elapsed, 3)
        state.finished = now_iso()
        state.usage = usage_json(ctx.model, ctx.tracker.total())
        if all(w.state == "done" for w in state.waves):
            state.state, state.error = "done", None
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


def run_summary(state: RunState, config: Config) -> dict[str, Any]:
    """Measured makespan beside the plan's estimates, in the plan's minutes."""
    est = state.estimates
    per_minute = config.fake_time_scale if config.llm == "fake" and config.fake_time_scale > 0 else 60.0
    measured = (state.makespan_s or 0.0) / per_minute
    serial, theoretical = est.get("serial", 0.0), est.get("theoretical", 0.0)
    realized = theoretical / measured if measured > 0 and theoretical > 0 else None
    return {
        "makespan_s": state.makespan_s,
        "makespan_plan_minutes": round(measured, 2),
        "estimates": est,
        "speedup_theoretical": round(serial / theoretical, 3) if theoretical else None,
        "speedup_realized": round(serial / measured, 3) if measured > 0 else None,
        "realized_share": round(min(realized, 1.0), 3) if realized else None,
        "seconds_per_plan_minute": per_minute,
    }
