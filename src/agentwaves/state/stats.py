"""What the history says: how good the file predictions and estimates were, and how to do better.

- :func:`history_stats`: file prediction precision and recall (overall and per planner model), the
  ratio of measured to estimated minutes (median, p25/p75, per kind), cost per estimated minute, and
  the tasks whose predictions missed most (``agentwaves stats``; keys in docs/cli.md).
- :func:`calibrate`: a plan with each estimate scaled by the measured ratio of its kind (with at least
  :data:`MIN_SAMPLES` done tasks of that kind), else the overall ratio (same minimum), else unchanged.
- :func:`lessons`: a short, bounded summary of past misses for the planner's prompt.

A task's prediction: an entry (path, directory or glob) is *used* when the task wrote a file it matches;
a written file is *covered* when some entry matches it. Precision = used / predicted entries, recall =
covered / written files, summed over the done tasks that predicted files and wrote some.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from typing import Any

from agentwaves.plan.globs import overlaps, parse_entry
from agentwaves.plan.model import Plan
from agentwaves.state.history import task_kind

MIN_SAMPLES = 3
MAX_MISSES = 5
MAX_LESSONS = 8
MAX_LESSONS_CHARS = 1500


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _paths(value: object) -> list[str]:
    return [str(p) for p in value if isinstance(p, str) and p.strip()] if isinstance(value, list) else []


def _done(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("state") == "done" and r.get("kind") != "gate"]


def match(record: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(used predicted entries, unused predicted entries, written files no entry covers)."""
    predicted = [parse_entry(p) for p in _paths(record.get("predicted"))]
    written = [parse_entry(p) for p in _paths(record.get("actual"))]
    used = [p.text for p in predicted if any(overlaps(p, w) for w in written)]
    unused = [p.text for p in predicted if p.text not in used]
    uncovered = [w.text for w in written if not any(overlaps(p, w) for p in predicted)]
    return used, unused, uncovered


def prediction(records: list[dict[str, Any]]) -> dict[str, Any]:
    used = predicted = covered = written = tasks = 0
    for r in records:
        u, unused, uncovered = match(r)
        n_written = len(_paths(r.get("actual")))
        if not (u or unused) or not n_written:
            continue
        tasks += 1
        used, predicted = used + len(u), predicted + len(u) + len(unused)
        covered, written = covered + n_written - len(uncovered), written + n_written
    return {
        "precision": round(used / predicted, 4) if predicted else None,
        "recall": round(covered / written, 4) if written else None,
        "tasks": tasks,
        "predicted": predicted,
        "written": written,
    }


def ratios(records: list[dict[str, Any]]) -> list[float]:
    """Measured / estimated minutes of the done tasks that have both."""
    out = []
    for r in _done(records):
        est, measured = _num(r.get("estimate")), _num(r.get("measured_minutes"))
        if est and est > 0 and measured is not None and measured > 0:
            out.append(measured / est)
    return out


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 4)
    return round(statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1], 4)


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "ratio_median": round(statistics.median(values), 4) if values else None,
        "ratio_p25": _quantile(values, 0.25),
        "ratio_p75": _quantile(values, 0.75),
        "tasks": len(values),
    }


def history_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``agentwaves stats --json`` object (without ``history``, which the caller adds)."""
    done = _done(records)
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in done:
        by_model[str(r.get("planner_model") or "unknown")].append(r)
        by_kind[str(r.get("kind") or "other")].append(r)
    cost = sum(_num(r.get("cost_usd")) or 0.0 for r in done)
    minutes = sum(_num(r.get("estimate")) or 0.0 for r in done)
    misses: list[dict[str, Any]] = []
    for r in done:
        _, unused, uncovered = match(r)
        if unused or uncovered:
            misses.append(
                {
                    "run": r.get("run"),
                    "task": r.get("task"),
                    "kind": r.get("kind"),
                    "unpredicted": uncovered,
                    "unused": unused,
                }
            )
    misses.sort(key=lambda m: (-len(m["unpredicted"]) - len(m["unused"]), str(m["run"]), str(m["task"])))
    return {
        "records": len(records),
        "runs": len({r.get("run") for r in records}),
        "tasks_done": len(done),
        "tasks_failed": sum(1 for r in records if r.get("state") == "failed"),
        "prediction": {
            **prediction(done),
            "by_planner_model": {m: prediction(rs) for m, rs in sorted(by_model.items())},
        },
        "duration": {
            **_spread(ratios(done)),
            "by_kind": {k: _spread(ratios(rs)) for k, rs in sorted(by_kind.items())},
        },
        "cost": {
            "usd_per_estimated_minute": round(cost / minutes, 6) if minutes else None,
            "usd_total": round(cost, 6),
            "estimated_minutes": round(minutes, 2),
        },
        "misses": misses[:MAX_MISSES],
    }


def factors(records: list[dict[str, Any]]) -> tuple[float | None, dict[str, float]]:
    """The overall measured/estimated ratio and the per-kind ones, each from at least MIN_SAMPLES tasks."""
    overall = ratios(records)
    kinds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in _done(records):
        kinds[str(r.get("kind") or "other")].append(r)
    per_kind = {k: statistics.median(v) for k, rs in kinds.items() if len(v := ratios(rs)) >= MIN_SAMPLES}
    return (statistics.median(overall) if len(overall) >= MIN_SAMPLES else None), per_kind


def calibrate(plan: Plan, records: list[dict[str, Any]]) -> tuple[Plan, dict[str, Any]]:
    """``plan`` with each estimate scaled by its kind's (else the overall) measured ratio, and what was
    done: ``{"tasks", "overall", "by_kind", "scaled": {task: [before, after, source]}}``."""
    overall, per_kind = factors(records)
    tasks, scaled = [], {}
    for task in plan.tasks:
        kind = task_kind(task)
        factor, source = (per_kind[kind], kind) if kind in per_kind else (overall, "overall")
        if factor is None or task.kind == "gate":
            tasks.append(task)
            continue
        after = round(task.estimate * factor, 2)
        scaled[task.id] = [task.estimate, after, source]
        tasks.append(task.model_copy(update={"estimate": after}))
    info = {
        "tasks": len(ratios(records)),
        "overall": None if overall is None else round(overall, 4),
        "by_kind": {k: round(v, 4) for k, v in sorted(per_kind.items())},
        "scaled": scaled,
    }
    return Plan(feature=plan.feature, tasks=tasks), info


def lessons(records: list[dict[str, Any]]) -> str:
    """Past misses as a few lines for the planner (empty without history), at most MAX_LESSONS_CHARS."""
    done = _done(records)
    if not done:
        return ""
    extra: dict[str, Counter[str]] = defaultdict(Counter)
    unused: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for r in done:
        kind = str(r.get("kind") or "other")
        count[kind] += 1
        _, u, uncovered = match(r)
        extra[kind].update(set(uncovered))
        unused.update(set(u))
    lines = []
    for kind, files in sorted(extra.items(), key=lambda kv: -sum(kv[1].values())):
        for path, n in files.most_common(2):
            where = "in " + kind[5:] if kind.startswith("code:") else f"of kind {kind}"
            lines.append(f"- tasks predicting files {where} also wrote {path} ({n} of {count[kind]} times)")
    for entry, n in unused.most_common(2):
        lines.append(f"- {entry} was predicted but not written ({n} times)")
    values = ratios(done)
    if len(values) >= MIN_SAMPLES:
        lines.append(
            f"- tasks took {statistics.median(values):.2g}x their estimated minutes (median of {len(values)})"
        )
    if not lines:
        return ""
    text = "\n".join(lines[:MAX_LESSONS])
    if len(text) > MAX_LESSONS_CHARS:
        text = text[: MAX_LESSONS_CHARS - 4].rsplit("\n", 1)[0] + "\n- …"
    return "# What past runs of this repository got wrong\n" + text
