"""Rendering of command results: plans, run summaries, JSON. Consoles are made per call."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from agentwaves.run.events import Subscriber


def console(stderr: bool = False) -> Console:
    return Console(file=sys.stderr if stderr else sys.stdout, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def render_plan_outcome(outcome: Any, analysis: Any) -> None:
    from agentwaves.ui.analysis import render_analysis

    out = console()
    out.print(f"[bold]Plan[/] for: {outcome.plan.feature}")
    if outcome.calibrated is not None:
        from agentwaves.cli.analyze import calibration_line

        out.print(calibration_line(outcome.calibration), markup=False)
    render_analysis(analysis, out)
    out.print(
        f"\nPlan written to [cyan]{outcome.plan_path}[/] (edit it freely), analysis to "
        f"[cyan]{outcome.analysis_path}[/]."
    )
    out.print("Next: [bold]agentwaves execute --waves[/]")


@contextlib.contextmanager
def progress_subscribers(json_out: bool) -> Iterator[list[Subscriber]]:
    """Event subscribers for a run: JSON lines, the live display on a terminal, or plain lines."""
    if json_out:
        yield [lambda e: print(json.dumps(e, default=str), flush=True)]
        return
    if sys.stdout.isatty():
        from agentwaves.ui.live import LiveDisplay

        with LiveDisplay() as live:
            yield [print_run_warnings, live]
        return
    from agentwaves.ui.plain import PlainPrinter

    yield [print_run_warnings, PlainPrinter()]


def print_run_warnings(event: dict[str, Any]) -> None:
    """Print a run's warnings (no sandbox, uncommitted changes) once, on stderr, as the run starts."""
    if event.get("type") == "run_started":
        for warning in event.get("warnings") or []:
            console(stderr=True).print(f"[yellow]warning:[/] {warning}")


def finish_run(outcome: Any, json_out: bool) -> None:
    """Print the run's summary; exit 1 unless it is done."""
    state = outcome.state
    if json_out:
        print(
            json.dumps(
                {
                    "type": "summary",
                    "run": state.run_id,
                    "state": state.state,
                    "error": state.error,
                    "branch": state.branch,
                    **outcome.summary,
                },
                default=str,
            )
        )
    else:
        render_summary(outcome)
    if not outcome.ok:
        raise typer.Exit(1)


def render_summary(outcome: Any) -> None:
    state, summary = outcome.state, outcome.summary
    out = console()
    if outcome.note:
        console(stderr=True).print(outcome.note)
    est = summary["estimates"]
    table = Table(title=f"Run {state.run_id}: {state.state}", show_header=True)
    table.add_column("measure")
    table.add_column("plan minutes", justify="right")
    for key in ("serial", "groups_sequential", "theoretical", "practical"):
        table.add_row(f"estimate: {key}", f"{est.get(key, 0):g}")
    table.add_row("[bold]measured makespan[/]", f"{summary['makespan_plan_minutes']:g}")
    out.print(table)
    if summary.get("realized_share") is not None:
        out.print(
            f"speedup: realized {summary['speedup_realized']}x of a theoretical "
            f"{summary['speedup_theoretical']}x ({summary['realized_share']:.0%}); "
            f"{state.makespan_s:.1f}s wall clock"
        )
    usage = state.usage or {}
    if usage:
        out.print(
            f"tokens: {usage.get('input_tokens', 0):,} input, "
            f"{usage.get('cache_creation_input_tokens', 0):,} cache write, "
            f"{usage.get('cache_read_input_tokens', 0):,} cache read, "
            f"{usage.get('output_tokens', 0):,} output; cost ${usage.get('cost_usd', 0):.4f}"
        )
    for w in state.waves:
        if w.commit:
            out.print(f"wave {w.index}: {w.commit[:10]} ({', '.join(g.name for g in w.groups)})")
    if state.state == "done":
        out.print(
            f"\nAll waves committed on [cyan]{state.branch}[/]. Review: agentwaves review; "
            "land: agentwaves land"
        )
        return
    err = console(stderr=True)
    err.print(f"[red]run {state.state}:[/] {state.error}")
    for w in state.waves:
        for g in w.groups:
            if g.state == "failed":
                err.print(f"  group {g.name}: {g.error}")
                for t in g.tasks:
                    if t.state == "failed":
                        err.print(f"    log: {outcome.run_dir / 'logs' / (t.id + '.log')}")
    err.print(f"Resume with: agentwaves resume {state.run_id}")
