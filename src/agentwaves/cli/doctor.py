"""`agentwaves doctor`: which agents are installed and can authenticate; bubblewrap; git."""

from __future__ import annotations

from pathlib import Path

import typer

from agentwaves.cli import options as opt


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_cmd(
        repo: opt.Repo = Path("."), agent: opt.Agent = None, llm: opt.Llm = None, json_out: opt.Json = False
    ) -> None:
        """Check each agent (installed, version, can authenticate), bubblewrap and git; one line each."""
        from agentwaves.agents.doctor import doctor_lines, run_doctor
        from agentwaves.config import load_config
        from agentwaves.ui.render import print_json

        root = repo if (repo / ".git").exists() else Path(".")
        report = run_doctor(load_config(root, {"agent": agent, "llm": llm}))
        if json_out:
            print_json(report)
        else:
            for line in doctor_lines(report):
                typer.echo(line)
        raise typer.Exit(0 if report["ok"] else 1)
