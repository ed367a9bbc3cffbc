"""`agentwaves plan FEATURE`: draft a plan with the planner agent and show its analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentwaves.cli import options as opt


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan_cmd(
        feature: Annotated[str, typer.Argument(help="The feature to build, in plain words.")],
        repo: opt.Repo = Path("."),
        llm: opt.Llm = None,
        agent: opt.Agent = None,
        model: opt.Model = None,
        out: Annotated[Path | None, typer.Option("--out", help="Where to write the plan.")] = None,
        max_agents: opt.MaxAgents = None,
        fake_script: opt.FakeScript = None,
        record: opt.Record = None,
        verbose: opt.Verbose = False,
        json_out: opt.Json = False,
    ) -> None:
        """Plan FEATURE: write .agentwaves/plan.yaml and the parallelization analysis."""
        from agentwaves.plan import analyze
        from agentwaves.run.planning import draft_plan
        from agentwaves.ui.render import print_json, print_retry, render_plan_outcome

        overrides = {
            "llm": llm,
            "agent": agent,
            "model": model,
            "max_agents": max_agents,
            "fake_script": str(fake_script) if fake_script else None,
            "record": str(record) if record else None,
        }
        outcome = draft_plan(repo, feature, overrides, out, on_retry=print_retry)
        analysis = analyze(outcome.calibrated or outcome.plan, max_agents=max_agents or 4)
        if json_out:
            print_json(
                {
                    "plan": str(outcome.plan_path),
                    "analysis_markdown": str(outcome.analysis_path),
                    "previous_plan": str(outcome.previous) if outcome.previous else None,
                    "gate_note": outcome.gate_note,
                    **analysis.to_json(),
                    "calibration": outcome.calibration,
                }
            )
        else:
            render_plan_outcome(outcome, analysis, verbose=verbose)
