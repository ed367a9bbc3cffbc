"""`agentwaves analyze PLAN`: waves, conflicts and estimates for a plan file, without running anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from agentwaves.cli import options as opt


def register(app: typer.Typer) -> None:
    @app.command("analyze")
    def analyze_cmd(
        plan: Annotated[
            Path | None,
            typer.Argument(
                help="A plan: YAML, or a pipeline table (.pipeline). Default .agentwaves/plan.yaml."
            ),
        ] = None,
        json_out: opt.Json = False,
        verbose: opt.Verbose = False,
        repo: opt.Repo = Path("."),
        max_agents: opt.MaxAgents = None,
        markdown: Annotated[
            Path | None,
            typer.Option("--markdown", help="Also write the parallelization analysis (Markdown) here."),
        ] = None,
        calibrate: Annotated[
            bool,
            typer.Option(
                "--calibrate",
                help="Scale the estimates by the measured/estimated ratio of past runs (the repository's "
                ".agentwaves/history.jsonl).",
            ),
        ] = False,
    ) -> None:
        """Show the waves, groups, conflicts and time estimates of PLAN (default .agentwaves/plan.yaml)."""
        from agentwaves.errors import UsageError
        from agentwaves.plan import PlanError, analyze, load_plan
        from agentwaves.plan.report import analysis_markdown

        if plan is None:
            from agentwaves.git.ops import find_repo_root

            plan = find_repo_root(repo) / ".agentwaves" / "plan.yaml"
            if not plan.is_file():
                raise UsageError(f'no plan at {plan}: run `agentwaves plan "FEATURE"` first, or pass PLAN')
        loaded = load_plan(plan)
        calibration = None
        if calibrate:
            from agentwaves.state.history import repo_history
            from agentwaves.state.stats import calibrate as scale

            loaded, calibration = scale(loaded, repo_history(repo)[1])
        try:
            analysis = analyze(loaded, max_agents=max_agents or 4)
        except PlanError as exc:
            raise PlanError(f"{plan}: {exc}") from None
        if markdown is not None:
            try:
                markdown.write_text(analysis_markdown(analysis), encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write {markdown}: {exc.strerror or exc}") from None
        if json_out:
            extra = {"calibration": calibration} if calibration is not None else {}
            print(json.dumps({**analysis.to_json(), **extra}, indent=2))
            return
        from rich.console import Console

        from agentwaves.ui.analysis import calibration_line, render_analysis

        console = Console(highlight=False)
        if calibration is not None:
            console.print(calibration_line(calibration), markup=False)
        render_analysis(analysis, console, verbose=verbose)
        if markdown is not None:
            console.print(f"Analysis written to {markdown}")
