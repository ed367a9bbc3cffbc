"""Rich tables for a plan analysis: waves -> groups -> tasks, estimates, serialization points."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentwaves.plan.graph import Analysis
from agentwaves.plan.report import minutes
from agentwaves.ui.analysis_summary import analysis_group_span, render_summary
from agentwaves.ui.term import print_table

LONG_PLAN = 60  # tasks: above this, a summary unless --verbose


def render_analysis(analysis: Analysis, console: Console | None = None, *, verbose: bool = False) -> None:
    """Print the analysis as tables on ``console`` (a fresh stdout console by default). A plan of more than
    :data:`LONG_PLAN` tasks gets a summary (one row per wave, the first serialization points) unless
    ``verbose``."""
    out = console or Console(highlight=False)
    if not verbose and len(analysis.plan.tasks) > LONG_PLAN:
        render_summary(analysis, out)
        return
    plan, est = analysis.plan, analysis.estimates
    by_id = plan.by_id
    heading = plan.feature or "Plan"
    out.print(
        Text.assemble(
            (heading, "bold"),
            f" — {len(plan.tasks)} tasks, {len(analysis.waves)} waves, "
            f"at most {analysis.max_agents} agents at once",
        )
    )

    waves = Table(title="Waves", title_justify="left", show_lines=False)
    waves.add_column("Wave", justify="right", style="bold")
    waves.add_column("Group", style="cyan")
    waves.add_column("Tasks")
    waves.add_column("Min", justify="right")
    for wave in analysis.waves:
        for k, group in enumerate(wave.groups):
            lines = []
            for tid in group.tasks:
                task = by_id[tid]
                after = group.after.get(tid) or []
                line = Text.assemble((tid, "bold"), f" {task.title} ({minutes(task.estimate)})")
                if task.is_gate:
                    line.append(f"  $ {task.command}", style="dim")
                if after:
                    line.append(f"  after {', '.join(after)}", style="yellow")
                lines.append(line)
            span = analysis_group_span(analysis, group.tasks, group.after)
            name = Text(group.name + (" (gate)" if group.gate else ""))
            waves.add_row(str(wave.index) if k == 0 else "", name, Text("\n").join(lines), minutes(span))
        if wave.index != len(analysis.waves):
            waves.add_section()
    print_table(out, waves)

    table = Table(title="Estimates (minutes)", title_justify="left")
    table.add_column("Schedule")
    table.add_column("Min", justify="right")
    table.add_column("Speedup", justify="right")
    for label, value in (
        ("serial (one task at a time)", est.serial),
        ("groups one at a time (before waves)", est.groups_sequential),
        ("theoretical (dependencies only)", est.theoretical),
        (f"practical (conflicts, {analysis.max_agents} agents)", est.practical),
    ):
        table.add_row(label, minutes(value), f"{est.speedup(value):.2f}x")
    print_table(out, table)
    out.print(
        Text.assemble(
            (f"Critical path ({minutes(est.theoretical)} min): ", "bold"), " → ".join(analysis.critical_path)
        )
    )

    if analysis.serialization_points:
        points = Table(title="Serialization points", title_justify="left")
        points.add_column("Tasks", style="bold")
        points.add_column("Reason")
        points.add_column("Resolution", style="cyan")
        for p in analysis.serialization_points:
            resolution = p.resolution + (f" ({p.moved} moved)" if p.moved else "")
            points.add_row(", ".join(p.tasks), p.reason, resolution)
        print_table(out, points)
    else:
        out.print("No serialization points: no two tasks of one wave conflict.")
    for s in analysis.suggestions:
        out.print(Text.assemble(("suggestion: ", "green"), s))
    for w in analysis.warnings:
        out.print(Text.assemble(("warning: ", "yellow"), w))


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
