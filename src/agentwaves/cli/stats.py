"""`agentwaves stats`: how well past runs' predictions (files, minutes) held, from the run history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from agentwaves.cli import options as opt


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f} %"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def stats_text(data: dict[str, Any]) -> str:
    """The stats as a few plain lines."""
    if not data["records"]:
        return f"No history yet in {data['history']}: it grows with every finished run."
    p, d, c = data["prediction"], data["duration"], data["cost"]
    lines = [
        f"History: {data['records']} task records from {data['runs']} runs ({data['history']})",
        f"File predictions: precision {_pct(p['precision'])}, recall {_pct(p['recall'])} "
        f"({p['tasks']} tasks, {p['predicted']} predicted entries, {p['written']} files written)",
    ]
    for model, m in p["by_planner_model"].items():
        lines.append(f"  planner {model}: precision {_pct(m['precision'])}, recall {_pct(m['recall'])}"
                     f" ({m['tasks']} tasks)")  # fmt: skip
    lines.append(
        f"Measured / estimated minutes: median {_x(d['ratio_median'])} "
        f"(p25 {_x(d['ratio_p25'])}, p75 {_x(d['ratio_p75'])}; {d['tasks']} tasks)"
    )
    for kind, k in d["by_kind"].items():
        if k["tasks"]:
            lines.append(f"  {kind}: median {_x(k['ratio_median'])} ({k['tasks']} tasks)")
    per_min = c["usd_per_estimated_minute"]
    lines.append(
        f"Cost: ${c['usd_total']:.4f} for {c['estimated_minutes']} estimated minutes"
        + (f" (${per_min:.4f} per estimated minute)" if per_min is not None else "")
    )
    if data["misses"]:
        lines.append("Predictions that missed most:")
        for m in data["misses"]:
            parts = []
            if m["unpredicted"]:
                parts.append("wrote unpredicted " + ", ".join(m["unpredicted"][:5]))
            if m["unused"]:
                parts.append("predicted but did not write " + ", ".join(m["unused"][:5]))
            lines.append(f"  {m['run']} {m['task']}: " + "; ".join(parts))
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("stats")
    def stats_cmd(repo: opt.Repo = Path("."), json_out: opt.Json = False) -> None:
        """How well past runs' file predictions and estimates held (from .agentwaves/history.jsonl)."""
        from agentwaves.state.history import repo_history
        from agentwaves.state.stats import history_stats
        from agentwaves.ui.render import print_json

        path, records = repo_history(repo)
        data = {"history": str(path), **history_stats(records)}
        if json_out:
            print_json(data)
        else:
            print(stats_text(data))
