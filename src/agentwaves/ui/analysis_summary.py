"""The analysis of a long plan in a screenful: one row per wave, the first serialization points, the ends
of the critical path. ``--verbose`` prints everything (:func:`agentwaves.ui.analysis.render_analysis`),
``--json`` gives all of it as data."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentwaves.plan.graph import Analysis
from agentwaves.plan.report import minutes
from agentwaves.ui.term import print_table

SHOWN = 10


def _more(n: int, what: str) -> Text:
    return Text(f"… {n} more {what} (--verbose or --json for all)", style="dim")


def render_summary(analysis: Analysis, out: Console) -> None:

    plan, est = analysis.plan, analysis.estimates
    out.print(
        Text.assemble(
            (plan.feature or "Plan", "bold"),
            f" — {len(plan.tasks)} tasks, {len(analysis.waves)} waves, "
            f"at most {analysis.max_agents} agents at once",
        )
    )
    waves = Table(title="Waves (summary)", title_justify="left")
    waves.add_column("Wave", justify="right", style="bold")
    waves.add_column("Groups", justify="right")
    waves.add_column("Tasks", justify="right")
    waves.add_column("Longest group (min)", justify="right")
    for wave in analysis.waves[: 2 * SHOWN]:
        spans = [analysis_group_span(analysis, g.tasks, g.after) for g in wave.groups]
        tasks = sum(len(g.tasks) for g in wave.groups)
        waves.add_row(str(wave.index), str(len(wave.groups)), str(tasks), minutes(max(spans, default=0.0)))
    print_table(out, waves)
    if len(analysis.waves) > 2 * SHOWN:
        out.print(_more(len(analysis.waves) - 2 * SHOWN, "waves"))
    out.print(
        Text.assemble(
            ("Estimates (minutes): ", "bold"),
            f"serial {minutes(est.serial)}, groups one at a time {minutes(est.groups_sequential)}, "
            f"theoretical {minutes(est.theoretical)} ({est.speedup(est.theoretical):.2f}x), "
            f"practical {minutes(est.practical)} ({est.speedup(est.practical):.2f}x)",
        )
    )
    path = analysis.critical_path
    shown = " → ".join(path) if len(path) <= 12 else " → ".join([*path[:5], "…", *path[-5:]])
    out.print(
        Text.assemble((f"Critical path ({minutes(est.theoretical)} min, {len(path)} tasks): ", "bold"), shown)
    )
    points = analysis.serialization_points
    if points:
        out.print(Text(f"Serialization points: {len(points)}", style="bold"))
        for p in points[:SHOWN]:
            out.print(f"  {', '.join(p.tasks)}: {p.reason} → {p.resolution}")
        if len(points) > SHOWN:
            out.print(_more(len(points) - SHOWN, "serialization points"))
    else:
        out.print("No serialization points: no two tasks of one wave conflict.")
    for label, items, style in (
        ("suggestion", analysis.suggestions, "green"),
        ("warning", analysis.warnings, "yellow"),
    ):
        for item in items[:SHOWN]:
            out.print(Text.assemble((f"{label}: ", style), item))
        if len(items) > SHOWN:
            out.print(_more(len(items) - SHOWN, f"{label}s"))
    out.print(
        Text(
            f"A summary of a long plan ({len(plan.tasks)} tasks): --verbose prints every wave, group and "
            "task, --json all of it as data.",
            style="dim",
        )
    )


def analysis_group_span(analysis: Analysis, tasks: list[str], after: dict[str, list[str]]) -> float:
    """How long a group takes with unlimited agents, following ``after``."""
    by_id = analysis.plan.by_id
    finish: dict[str, float] = {}
    for tid in tasks:
        finish[tid] = by_id[tid].estimate + max((finish[p] for p in after.get(tid, ())), default=0.0)
    return max(finish.values(), default=0.0)
