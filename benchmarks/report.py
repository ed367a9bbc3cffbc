"""Markdown tables of a results file, for docs/benchmarks.md: ``python -m benchmarks.report RESULTS.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCHEDULES = ("eager", "waves", "sequential")


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _cell(entry: dict[str, Any]) -> str:
    measured = entry.get("ratio")
    return (
        f"{_f(measured)} ({entry['sim_ratio']:.2f})"
        if measured is not None
        else f"- ({entry['sim_ratio']:.2f})"
    )


def cases_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| case | tasks | agents | conflicts | bound (min) | s / min | eager | waves | sequential "
        "| waves / practical | eager sim: plan order, dependency-only chains "
        "| overhead ms/task (eager, waves) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        w = r["waves"]
        variants = f"{r['eager_plan_order_sim_ratio']:.2f}, {r['eager_deps_chain_sim_ratio']:.2f}"
        lines.append(
            f"| {r['case']} | {r['tasks']} | {r['agents']} | {r['conflicts']} | {_f(r['bound_min'], 1)} "
            f"| {r['time_scale']:.3f} | {_cell(r['eager'])} | {_cell(w)} | {_cell(r['sequential'])} "
            f"| {_f(w.get('vs_practical'))} ({w['sim_vs_practical']:.2f}) | {variants} "
            f"| {_f(r['eager'].get('overhead_ms_per_task'), 0)}, {_f(w.get('overhead_ms_per_task'), 0)} |"
        )
    return head + "\n".join(lines)


def summary_table(summary: dict[str, Any]) -> str:
    head = (
        "| cases | schedule | measured mean | measured max | simulated mean | simulated max "
        "| overhead ms/task (median) |\n|---|---|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for kind in ("example", "random", "all"):
        for s in SCHEDULES:
            e = summary[kind][s]
            m, sim, o = e["ratio"] or {}, e["sim_ratio"], e["overhead_ms_per_task"] or {}
            lines.append(
                f"| {kind} | {s} | {_f(m.get('mean'), 3)} | {_f(m.get('max'))} | {sim['mean']:.3f} "
                f"| {sim['max']:.2f} | {_f(o.get('median'), 0)} |"
            )
    return head + "\n".join(lines)


def markdown(res: dict[str, Any]) -> str:
    parts = []
    if "makespan" in res:
        m = res["makespan"]
        parts += [summary_table(m["summary"]), "", cases_table(m["cases"])]
        if m.get("scale_sweep"):
            parts += ["", cases_table(m["scale_sweep"])]
    return "\n".join(parts)


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
