"""Rendering of command results: plans, run summaries, JSON. Consoles are made per call."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from agentwaves.state.events import Subscriber

if TYPE_CHECKING:
    from rich.console import Console

# rich and the modules built on it are imported where they print: `execute --json` never loads them,
# about a tenth of a run's start-up (docs/benchmarks.md, "Agents")


def console(stderr: bool = False) -> Console:
    from agentwaves.ui.term import console as make

    return make(stderr)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def render_plan_outcome(outcome: Any, analysis: Any, *, verbose: bool = False) -> None:
    from agentwaves.ui.analysis import calibration_line, render_analysis

    out = console()
    out.print(f"[bold]Plan[/] for: {outcome.plan.feature}")
    if outcome.calibrated is not None:
        out.print(calibration_line(outcome.calibration), markup=False)
    render_analysis(analysis, out, verbose=verbose)
    out.print(
        f"\nPlan written to [cyan]{outcome.plan_path}[/] (edit it freely), analysis to "
        f"[cyan]{outcome.analysis_path}[/]."
    )
    if getattr(outcome, "gate_note", None):
        out.print(f"Gate: {outcome.gate_note}.")
    if getattr(outcome, "previous", None):
        out.print(f"The previous plan was kept as [cyan]{outcome.previous}[/] (older ones as .2, .3 …).")
    out.print("Next: [bold]agentwaves execute --waves[/]")


def silence_stdout() -> None:
    """The reader of stdout went away (``| head``): send the rest of the output nowhere, so no later
    print (and no flush at exit) can fail. The run itself goes on."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def guarded(fn: Subscriber) -> Subscriber:
    """``fn``, silenced for good after its output fails (closed pipe, full disk): output problems never
    change a run's outcome."""
    broken = False

    def call(event: dict[str, Any]) -> None:
        nonlocal broken
        if broken:
            return
        try:
            fn(event)
        except (OSError, ValueError):
            broken = True
            silence_stdout()

    return call


@contextlib.contextmanager
def progress_subscribers(json_out: bool) -> Iterator[list[Subscriber]]:
    """Event subscribers for a run: JSON lines, the live display on a terminal, or plain lines."""
    if json_out:
        yield [guarded(lambda e: print(json.dumps(e, default=str), flush=True))]
        return
    if sys.stdout.isatty():
        from agentwaves.ui.live import LiveDisplay

        with LiveDisplay() as live:
            yield [guarded(print_run_warnings), guarded(live)]
        return
    from agentwaves.ui.plain import PlainPrinter

    yield [guarded(print_run_warnings), guarded(PlainPrinter())]


def print_retry(error: Exception, attempt: int, wait: float) -> None:
    """A model call that failed and is retried, on stderr as it happens (``plan``: no event log)."""
    from rich.markup import escape

    from agentwaves.redact import Redactor

    why = escape(Redactor().redact(str(error)))
    console(stderr=True).print(
        f"[yellow]model call failed[/] ({why}); attempt {attempt} failed, retrying in {wait:.1f}s"
    )


def print_run_warnings(event: dict[str, Any]) -> None:
    """Print a run's warnings (no sandbox, uncommitted changes) once, on stderr, as the run starts."""
    if event.get("type") == "run_started":
        for warning in event.get("warnings") or []:
            console(stderr=True).print(f"[yellow]warning:[/] {warning}")


def notices_at_start(notices: list[str]) -> Subscriber:
    """A subscriber printing ``notices`` (a detached HEAD, an unlanded run) on stderr as the run starts:
    not before a check that stops the command (an unknown agent, a missing CLI), when no run starts."""

    def show(event: dict[str, Any]) -> None:
        if event.get("type") == "run_started":
            for notice in notices:
                console(stderr=True).print(notice, markup=False, highlight=False)

    return guarded(show)


def finish_run(outcome: Any, json_out: bool) -> None:
    """Print the run's summary; exit 1 unless it is done (130 / 143 after SIGINT / SIGTERM). A closed
    stdout does not change the exit code."""
    try:
        _print_outcome(outcome, json_out)
    except (OSError, ValueError):
        silence_stdout()
    if not outcome.ok:
        raise typer.Exit(getattr(outcome, "exit_code", 1))


def _print_outcome(outcome: Any, json_out: bool) -> None:
    state = outcome.state
    if json_out:
        unfinished = {"speedup_realized": None, "realized_share": None} if state.state != "done" else {}
        print(
            json.dumps(
                {
                    "type": "summary",
                    "run": state.run_id,
                    "state": state.state,
                    "error": state.error,
                    "branch": state.branch,
                    **outcome.summary,
                    **unfinished,
                },
                default=str,
            )
        )
    else:
        render_summary(outcome)


GATE_TAIL = 15  # lines of a failed gate's output shown in the summary


def tail_lines(path: Path, n: int) -> list[str]:
    """The last ``n`` lines of a text file (none if it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.rstrip("\n").splitlines()[-n:]


def render_summary(outcome: Any) -> None:
    from rich.table import Table

    from agentwaves.ui.live import cost_text
    from agentwaves.ui.status import SIMULATED
    from agentwaves.ui.term import print_table

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
    print_table(out, table)
    if state.state == "done" and summary.get("realized_share") is not None:  # no speedup for unfinished work
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
            f"{usage.get('output_tokens', 0):,} output; {cost_text(usage)}"
            + (SIMULATED if state.settings.llm == "fake" else "")
        )
    for w in state.waves:
        if w.commit:
            out.print(f"wave {w.index}: {w.commit[:10]} ({', '.join(g.name for g in w.groups)})")
    if state.state == "done":
        out.print(
            f"\nAll waves committed on [cyan]{state.branch}[/]. Review: agentwaves review {state.run_id}; "
            f"land: agentwaves land {state.run_id}"
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
                        log = outcome.run_dir / "logs" / (t.id + ".log")
                        err.print(f"    log: {log}")
                        if t.kind == "gate":
                            for line in tail_lines(log, GATE_TAIL):
                                err.print(f"    | {line}", markup=False, highlight=False)
    err.print(f"Resume with: agentwaves resume {state.run_id}")
