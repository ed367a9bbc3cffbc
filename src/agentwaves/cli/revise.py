"""`agentwaves revise`: send a review comment back to a task's agent; the run's waves are rebuilt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentwaves.cli import options as opt


def register(app: typer.Typer) -> None:
    @app.command("revise")
    def revise_cmd(
        args: Annotated[
            list[str], typer.Argument(help='[RUN] "COMMENT": the run (latest if omitted), then the comment.')
        ],
        task: Annotated[str | None, typer.Option("--task", help="The task to revise.")] = None,
        wave: Annotated[
            int | None, typer.Option("--wave", help="Revise the last task of each group of this wave.")
        ] = None,
        llm: opt.Llm = None,
        model: opt.Model = None,
        max_agents: opt.MaxAgents = None,
        fake_script: opt.FakeScript = None,
        sandbox: Annotated[str | None, typer.Option("--sandbox", help="auto, bwrap or none.")] = None,
        repo: opt.Repo = Path("."),
        json_out: opt.Json = False,
    ) -> None:
        """Run a task's agent again with a review comment, then merge its wave and every later one again.

        Before `land` only. The old wave commits stay reachable under refs/agentwaves/<run>/history/."""
        from agentwaves.errors import UsageError
        from agentwaves.review.revise import request_revision
        from agentwaves.run.session import resume_run
        from agentwaves.ui.render import finish_run, progress_subscribers

        if len(args) not in (1, 2):
            raise UsageError('give the comment (and optionally the run before it): revise [RUN] "COMMENT"')
        run_id, comment = (None, args[0]) if len(args) == 1 else (args[0], args[1])
        rid = request_revision(repo, run_id, task, wave, comment)
        overrides = {
            "llm": llm,
            "model": model,
            "max_agents": max_agents,
            "fake_script": str(fake_script) if fake_script else None,
            "sandbox": sandbox,
        }
        with progress_subscribers(json_out) as subscribers:
            outcome = resume_run(repo, rid, overrides, subscribers)
        finish_run(outcome, json_out)
