"""`agentwaves analyze PLAN`: waves, conflicts and estimates for a plan file, without running anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from agentwaves.cli import options as opt


def register(app: typer.Typer) -> None:
    @app.command("analyze")
    def analyze_cmd(
        plan: Annotated[Path, typer.Argument(help="A plan: YAML, or a pipeline table (.pipeline).")],
        json_out: opt.Json = False,
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
        repo: opt.Repo = Path("."),
    ) -> None:
        """Show the waves, groups, conflicts and time estimates of PLAN."""
        from agentwaves.errors import UsageError
        from agentwaves.plan import PlanError, analyze, load_plan
        from agentwaves.plan.report import analysis_markdown

        loaded = load_plan(plan)
        calibration = None
        if calibrate:
            from agentwaves.run.history import repo_history
            from agentwaves.run.stats import calibrate as scale

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

        from agentwaves.ui.analysis import render_analysis

        console = Console(highlight=False)
        if calibration is not None:
            console.print(calibration_line(calibration))
        render_analysis(analysis, console)
        if markdown is not None:
            console.print(f"Analysis written to {markdown}")


def calibration_line(info: dict[str, Any]) -> str:
    """One line saying how the estimates were calibrated."""
    scaled = info.get("scaled") or {}
    if not scaled:
        return f"Estimates unchanged: the history has {info.get('tasks')} measured tasks (at least 3 needed)."
    kinds = info.get("by_kind") or {}
    per_kind = f", per kind: {', '.join(f'{k} {v}x' for k, v in kinds.items())}" if kinds else ""
    return (
        f"Estimates calibrated from {info.get('tasks')} measured tasks of history "
        f"(overall {info.get('overall')}x{per_kind})."
    )
