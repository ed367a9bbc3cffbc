"""`agentwaves demo`: plan and execute a feature on the bundled sandbox project, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agentwaves.demo import DEFAULT_TIME_SCALE


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        time_scale: Annotated[
            float,
            typer.Option(
                "--time-scale", min=0.0, help="Seconds of simulated agent work per estimated minute."
            ),
        ] = DEFAULT_TIME_SCALE,
        dest: Annotated[
            Path | None,
            typer.Option(
                "--dir", help="Where to create the demo repository.", file_okay=False, resolve_path=True
            ),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Stream events as JSON lines.")] = False,
    ) -> None:
        """Run the offline demo: the fake LLM plans and builds 'email and SMS notifications' on sandbox/."""
        from agentwaves.demo import run_demo
        from agentwaves.plan import analyze
        from agentwaves.ui.render import console, finish_run, progress_subscribers, render_plan_outcome

        def planned(repo: Path, drafted: Any) -> None:
            if not json_out:
                console().print(f"[bold]Demo repository:[/] {repo}")
                render_plan_outcome(drafted, analyze(drafted.plan))

        with progress_subscribers(json_out) as subscribers:
            outcome = run_demo(dest, time_scale, subscribers, on_planned=planned)
        if not json_out:
            out = console()
            out.print(f"\n[bold]Per-wave commits on {outcome.run.state.branch}[/] (newest first):")
            for line in outcome.log:
                out.print(f"  {line}")
            out.print(f"\nTry: cd {outcome.repo} && agentwaves status && agentwaves review --wave 1 --diff")
        finish_run(outcome.run, json_out)
