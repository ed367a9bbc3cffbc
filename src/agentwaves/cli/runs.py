"""Commands that look at runs and finish them: status, runs, review, report, logs, land, clean.

Each command parses its options, calls one function of :mod:`agentwaves.review.inspect`,
:mod:`agentwaves.review.land` or :mod:`agentwaves.run.report`, and renders the result (rich, or ``--json``).
JSON shapes are documented in ``docs/cli.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agentwaves.cli import options as opt

All = Annotated[bool, typer.Option("--all", help="Every run of the repository.")]
Force = Annotated[bool, typer.Option("--force", help="Also delete integration branches that are not landed.")]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status_cmd(
        run_id: opt.RunId = None,
        all_runs: All = False,
        watch: Annotated[
            bool,
            typer.Option("--watch", "-w", help="Refresh until the run ends (exit 0 if it is done, else 1)."),
        ] = False,
        interval: Annotated[
            float, typer.Option("--interval", min=0.1, help="Seconds between refreshes of --watch.")
        ] = 2.0,
        repo: opt.Repo = Path("."),
        json_out: opt.Json = False,
    ) -> None:
        """Show a run's waves, groups and tasks: state, progress, failures and their logs, tokens and cost."""
        if watch:
            from agentwaves.errors import UsageError
            from agentwaves.ui.watch import watch_status

            if all_runs:
                raise UsageError("--watch follows one run: give a run id or none (the latest), not --all")
            if watch_status(repo, run_id, interval=interval, json_out=json_out) != "done":
                raise typer.Exit(1)
            return
        from agentwaves.review.inspect import open_run, runs_data, status_data
        from agentwaves.ui.render import print_json
        from agentwaves.ui.status import render_runs, render_status

        if all_runs:
            data = runs_data(repo)
            print_json(data) if json_out else render_runs(data)
            return
        data = status_data(open_run(repo, run_id))
        print_json(data) if json_out else render_status(data)

    @app.command("runs")
    def runs_cmd(repo: opt.Repo = Path("."), json_out: opt.Json = False) -> None:
        """List the repository's runs: id, state, tasks done, branch, creation time, cost, landed."""
        from agentwaves.review.inspect import runs_data
        from agentwaves.ui.render import print_json
        from agentwaves.ui.status import render_runs

        data = runs_data(repo)
        print_json(data) if json_out else render_runs(data)

    @app.command("review")
    def review_cmd(
        run_id: opt.RunId = None,
        wave: Annotated[int | None, typer.Option("--wave", help="Only this wave.")] = None,
        diff: Annotated[bool, typer.Option("--diff", help="Show each task's diff, by group.")] = False,
        repo: opt.Repo = Path("."),
        json_out: opt.Json = False,
    ) -> None:
        """Review a run wave by wave: commits, files changed, undeclared writes, handoffs, tokens and cost."""
        from agentwaves.review.inspect import open_run, review_data
        from agentwaves.ui.render import print_json
        from agentwaves.ui.review import render_review

        data = review_data(open_run(repo, run_id), wave, diff)
        print_json(data) if json_out else render_review(data, diff=diff)

    @app.command("report")
    def report_cmd(run_id: opt.RunId = None, repo: opt.Repo = Path("."), json_out: opt.Json = False) -> None:
        """Regenerate the run's report.md (timeline, estimates vs measured, failures, cost)."""
        from agentwaves.review.inspect import open_run
        from agentwaves.run.report import write_report
        from agentwaves.ui.render import print_json

        path = write_report(open_run(repo, run_id).run_dir)
        print_json({"report": str(path)}) if json_out else print(path)

    @app.command("logs")
    def logs_cmd(
        first: Annotated[
            str,
            typer.Argument(
                metavar="RUN_ID|TASK", help="A task of the latest run, or a run id (a prefix will do)."
            ),
        ],
        second: Annotated[
            str | None,
            typer.Argument(
                metavar="[TASK]", help="The task, when a run id comes first (or resolve-<wave>-<group>)."
            ),
        ] = None,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until it ends.")] = False,
        repo: opt.Repo = Path("."),
        json_out: opt.Json = False,
    ) -> None:
        """Print a task's transcript: messages, one line per tool call, errors. --follow tails it.

        `logs TASK` reads the latest run; `logs RUN_ID TASK` another one."""
        import json

        from agentwaves.review.inspect import follow_log, open_run
        from agentwaves.ui.render import console
        from agentwaves.ui.review import render_log_record

        out = console()

        def emit(record: dict[str, Any]) -> None:
            print(json.dumps(record), flush=True) if json_out else render_log_record(record, out)

        run_id, task = (None, first) if second is None else (first, second)
        follow_log(open_run(repo, run_id), task, emit, follow=follow)

    @app.command("land")
    def land_cmd(run_id: opt.RunId = None, repo: opt.Repo = Path("."), json_out: opt.Json = False) -> None:
        """Fast-forward your branch to a done run's integration branch, if that is safe."""
        from agentwaves.review.inspect import open_run
        from agentwaves.review.land import land
        from agentwaves.ui.render import console, print_json

        result = land(open_run(repo, run_id))
        if json_out:
            print_json(result)
        elif result["already"]:
            console().print(f"{result['branch']} already contains run {result['run']}: nothing to do")
        else:
            console().print(
                f"Landed run {result['run']}: {result['branch']} fast-forwarded "
                f"{result['from'][:10]} → {result['to'][:10]}. "
                f"Clean up with: agentwaves clean {result['run']}"
            )

    @app.command("clean")
    def clean_cmd(
        run_id: opt.RunId = None,
        all_runs: All = False,
        force: Force = False,
        runs: Annotated[
            bool,
            typer.Option("--runs", help="Also delete the run directories of runs that leave nothing in git."),
        ] = False,
        repo: opt.Repo = Path("."),
        json_out: opt.Json = False,
    ) -> None:
        """Remove a run's worktrees and group branches (and its integration branch once landed)."""
        from agentwaves.errors import UsageError
        from agentwaves.review.inspect import state_dir_of
        from agentwaves.review.land import clean
        from agentwaves.ui.render import console, print_json

        if all_runs and run_id:
            raise UsageError("give a run id or --all, not both")
        root, state_dir = state_dir_of(repo)
        result = clean(root, state_dir, run_id, all_runs=all_runs, force=force)
        if runs:
            from agentwaves.review.prune import prune_run_dirs

            prune_run_dirs(state_dir, result["runs"])
            result["freed_bytes"] = sum(r["freed_bytes"] for r in result["runs"])
        if json_out:
            print_json(result)
            return
        out = console()
        for skipped in result.get("skipped", []):
            console(stderr=True).print(
                f"warning: run {skipped['run']} skipped: {skipped['error']}", markup=False
            )
        notes = {
            "deleted-landed": "deleted (landed)",
            "deleted-forced": "deleted (--force)",
            "kept-unlanded": "kept: not landed (land it, or clean --force to delete it)",
            "kept": "kept: it could not be deleted (checked out somewhere?)",
            "absent": "already gone",
        }
        for r in result["runs"]:
            out.print(
                f"run {r['run']}: {len(r['worktrees_removed'])} worktrees removed, "
                f"{len(r['group_branches_deleted'])} group branches deleted; "
                f"{r['integration_branch']} {notes[r['integration']]}"
            )
            if r["group_branches_kept"]:
                out.print(
                    f"  kept {len(r['group_branches_kept'])} group branches: the run is {r['state']} "
                    "and can be resumed (clean --force deletes them)"
                )
            if r.get("run_dir_removed"):
                out.print(f"  run directory .agentwaves/runs/{r['run']} removed")
            elif runs:
                out.print(
                    f"  run directory kept: run {r['run']} still has branches (land, resume or --force)"
                )
        out.print(f"Freed {_size(result['freed_bytes'])}.")
