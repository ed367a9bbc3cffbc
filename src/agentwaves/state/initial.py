"""A new run's state: its waves, groups and tasks from the plan's analysis, and the settings it keeps."""

from __future__ import annotations

from pathlib import Path

from agentwaves.config import Config
from agentwaves.git.worktrees import integration_branch
from agentwaves.plan import Analysis, Plan
from agentwaves.state.store import GroupState, RunSettings, RunState, TaskState, WaveState


def initial_state(
    run_id: str, repo: Path, plan: Plan, analysis: Analysis, base: str, settings: RunSettings, base_port: int
) -> RunState:
    """The state of run ``run_id`` before anything ran: every task pending, ports from ``base_port``."""
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


def run_settings(config: Config) -> RunSettings:
    """What a run records of its settings, for ``resume`` to reuse."""
    return RunSettings(
        llm=config.llm,
        agent=config.agent,
        agent_command=config.agent_command,
        agent_args=config.agent_args,
        model=config.model,
        fake_script=config.fake_script,
        fake_time_scale=config.fake_time_scale,
        max_agents=config.max_agents,
        schedule=config.schedule,
        sandbox=config.sandbox,
        budget_usd=config.budget_usd,
        executor=config.executor,
    )
