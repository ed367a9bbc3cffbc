"""`agentwaves execute` and `agentwaves resume`: run a plan's waves; continue a failed run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agentwaves.cli import options as opt

Schedule = Annotated[
    str | None,
    typer.Option(
        "--schedule", help="waves (default), eager (start tasks past the wave barrier) or sequential."
    ),
]
Waves = Annotated[bool, typer.Option("--waves", help="Run wave by wave, groups concurrently (default).")]
Sequential = Annotated[bool, typer.Option("--sequential", help="Run one group at a time, for comparison.")]
Sandbox = Annotated[
    str | None, typer.Option("--sandbox", help="Sandbox for agents' commands: auto, bwrap, none.")
]
Budget = Annotated[
    float | None,
    typer.Option("--budget-usd", help="Stop cleanly before spending more than this many US dollars (> 0)."),
]


def _schedule(schedule: str | None, waves: bool, sequential: bool) -> str | None:
    from agentwaves.errors import UsageError

    chosen = [s for s, on in (("waves", waves), ("sequential", sequential)) if on]
    if schedule:
        if schedule not in ("waves", "eager", "sequential"):
            raise UsageError(f"unknown schedule {schedule!r}: choose waves, eager or sequential")
        chosen.append(schedule)
    if len(set(chosen)) > 1:
        raise UsageError("choose one of --waves, --sequential and --schedule")
    return chosen[0] if chosen else None


def _executor(executor: str | None) -> str | None:
    from agentwaves.errors import UsageError

    if executor is not None and executor not in ("local", "ray"):
        raise UsageError(f"unknown executor {executor!r}: choose local or ray")
    return executor


def _overrides(**kw: Any) -> dict[str, Any]:
    for key in ("fake_script", "record"):
        if kw.get(key) is not None:
            kw[key] = str(kw[key])
    return kw


def register(app: typer.Typer) -> None:
    @app.command("execute")
    def execute_cmd(
        waves: Waves = False,
        sequential: Sequential = False,
        schedule: Schedule = None,
        plan: Annotated[
            Path | None,
            typer.Option(
                "--plan", help="Plan file (default .agentwaves/plan.yaml).", dir_okay=False, resolve_path=True
            ),
        ] = None,
        max_agents: opt.MaxAgents = None,
        llm: opt.Llm = None,
        agent: opt.Agent = None,
        model: opt.Model = None,
        repo: opt.Repo = Path("."),
        fake_script: opt.FakeScript = None,
        fake_time_scale: opt.FakeTimeScale = None,
        sandbox: Sandbox = None,
        budget_usd: Budget = None,
        record: opt.Record = None,
        new: Annotated[
            bool, typer.Option("--new", help="Start a new run even if the last one can be resumed.")
        ] = False,
        executor: opt.Executor = None,
        json_out: opt.Json = False,
    ) -> None:
        """Execute the plan: each wave's groups in their own worktrees, one commit per wave."""
        from agentwaves.review.previous import check_before_execute
        from agentwaves.run.session import start_run
        from agentwaves.ui.preparing import preparing
        from agentwaves.ui.render import finish_run, notices_at_start, progress_subscribers

        notices = check_before_execute(repo, new)

        overrides = _overrides(
            schedule=_schedule(schedule, waves, sequential),
            max_agents=max_agents,
            llm=llm,
            agent=agent,
            model=model,
            fake_script=fake_script,
            fake_time_scale=fake_time_scale,
            sandbox=sandbox,
            budget_usd=budget_usd,
            record=record,
            executor=_executor(executor),
        )
        with progress_subscribers(json_out) as subscribers, preparing(subscribers, not json_out):
            outcome = start_run(repo, plan, overrides, [notices_at_start(notices), *subscribers])
        finish_run(outcome, json_out)

    @app.command("resume")
    def resume_cmd(
        run_id: opt.RunId = None,
        waves: Waves = False,
        sequential: Sequential = False,
        schedule: Schedule = None,
        max_agents: opt.MaxAgents = None,
        llm: opt.Llm = None,
        agent: opt.Agent = None,
        model: opt.Model = None,
        repo: opt.Repo = Path("."),
        fake_script: opt.FakeScript = None,
        fake_time_scale: opt.FakeTimeScale = None,
        sandbox: Sandbox = None,
        budget_usd: Budget = None,
        record: opt.Record = None,
        executor: opt.Executor = None,
        json_out: opt.Json = False,
    ) -> None:
        """Resume a failed or interrupted run: finished groups are kept, the rest runs again."""
        from agentwaves.run.session import resume_run
        from agentwaves.ui.preparing import preparing
        from agentwaves.ui.render import finish_run, progress_subscribers

        overrides = _overrides(
            schedule=_schedule(schedule, waves, sequential),
            max_agents=max_agents,
            llm=llm,
            agent=agent,
            model=model,
            fake_script=fake_script,
            fake_time_scale=fake_time_scale,
            sandbox=sandbox,
            budget_usd=budget_usd,
            record=record,
            executor=_executor(executor),
        )
        with progress_subscribers(json_out) as subscribers, preparing(subscribers, not json_out):
            outcome = resume_run(repo, run_id, overrides, subscribers)
        finish_run(outcome, json_out)
