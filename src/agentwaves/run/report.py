"""The run report, ``.agentwaves/runs/<id>/report.md``: what actually ran, beside what the plan estimated.

Built from ``state.json`` and ``events.jsonl`` only (no git, no network), so it can be regenerated at any
time (``agentwaves report``). The timeline is a Mermaid Gantt chart that GitHub renders as is: times are
millisecond epochs (``dateFormat x``) with durations in ``ms``, and every label is stripped of the
characters the Gantt grammar treats specially.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agentwaves.config import Config
from agentwaves.errors import AgentwavesError
from agentwaves.llm.usage import sum_usage
from agentwaves.plan.load import load_plan
from agentwaves.plan.model import Plan
from agentwaves.plan.report import MERMAID_MAX_TASKS, md_cell, minutes
from agentwaves.run.feedback.views import report_lines
from agentwaves.state.events import Event, read_events
from agentwaves.state.store import RunState, atomic_write, read_state

REPORT_FILE = "report.md"
_GANTT_KEYWORDS = re.compile(
    r"^(gantt|topaxis|inclusiveenddates|click|call|href|section|title|dateformat|axisformat|tickinterval"
    r"|includes|excludes|todaymarker|weekday|acctitle|accdescr|\d{4}-\d\d-\d\d)",
    re.IGNORECASE,
)
_CLOSE = {
    "task_done": "done",
    "task_failed": "failed",
    "task_stopped": "stopped",
    "gate_done": "done",
    "gate_failed": "failed",
}


@dataclass
class Bar:
    """One stretch of work on the timeline."""

    section: str
    label: str
    start: int
    end: int | None
    outcome: str = "running"


def gantt_text(text: str, limit: int = 60) -> str:
    """Text safe for a Gantt task or section name: no ``: # ; %``, one line, not starting with a keyword."""
    text = " ".join(re.sub(r"[:#;%\x00-\x1f]", " ", str(text)).split())[:limit].strip()
    if not text or _GANTT_KEYWORDS.match(text):
        text = "· " + text
    return text


def _ms(ts: str | None) -> int | None:
    if not ts:
        return None
    try:
        return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _wave_of(state: RunState) -> dict[str, tuple[int, str]]:
    """task id -> (wave index, group name)."""
    return {t.id: (w.index, g.name) for w in state.waves for g in w.groups for t in g.tasks}


def timeline(state: RunState, events: list[Event]) -> list[Bar]:
    """Bars for every task attempt, gate and wave merge, from the events (state times as a fallback)."""
    where = _wave_of(state)
    bars: list[Bar] = []
    open_: dict[str, Bar] = {}
    prev = 0
    for e in events:
        kind, ts = e.get("type"), _ms(e.get("ts"))
        if ts is None:
            continue
        if kind == "run_started":  # a resume: whatever was open died with the previous process
            for bar in open_.values():
                bar.end, bar.outcome = max(prev, bar.start), "interrupted"
            open_.clear()
        prev = ts
        if kind in ("task_started", "gate_started") and e.get("task") in where:
            tid = e["task"]
            wave, group = where[tid]
            attempt = int(e.get("attempt") or 1)
            label = tid + (f" attempt {attempt}" if attempt > 1 else "")
            bar = Bar(f"Wave {wave} {group}", label, ts, None)
            bars.append(bar)
            open_[tid] = bar
        elif kind in _CLOSE and e.get("task") in open_:
            bar = open_.pop(e["task"])
            bar.end, bar.outcome = ts, _CLOSE[str(kind)]
        elif kind == "wave_merging":
            bar = Bar("Merges", f"wave {e.get('wave')} merge", ts, None)
            bars.append(bar)
            open_[f"merge:{e.get('wave')}"] = bar
        elif kind == "wave_committed" and f"merge:{e.get('wave')}" in open_:
            bar = open_.pop(f"merge:{e.get('wave')}")
            bar.end, bar.outcome = ts, "done"
    if not bars:  # no events: the state's times
        for t in state.tasks():
            start = _ms(t.started)
            if start is not None:
                wave, group = where[t.id]
                bar = Bar(f"Wave {wave} {group}", t.id, start, _ms(t.finished), t.state)
                bars.append(bar)
    last = _ms(state.finished) or max((_ms(e.get("ts")) or 0 for e in events), default=0)
    for key, bar in open_.items():
        if bar.end is None:
            tid = key.split(":")[-1] if key.startswith("merge:") else key
            recorded = state.task(tid).state if tid in where else "failed"
            bar.end, bar.outcome = max(last, bar.start), "running" if recorded == "running" else "failed"
    for bar in bars:
        bar.end = bar.end if bar.end is not None else max(last, bar.start)
    return bars


def mermaid_gantt(state: RunState, bars: list[Bar]) -> str:
    tags = {
        "done": "done, ",
        "failed": "crit, ",
        "stopped": "crit, ",
        "interrupted": "crit, ",
        "running": "active, ",
    }
    lines = [
        "gantt",
        f"    title {gantt_text('Run ' + state.run_id, 80)}",
        "    dateFormat x",
        "    axisFormat %H:%M:%S",
        "    todayMarker off",
    ]
    sections = sorted({b.section for b in bars}, key=lambda s: (s == "Merges", _section_order(s)))
    for section in sections:
        lines.append(f"    section {gantt_text(section)}")
        for n, b in enumerate(bars):
            if b.section != section:
                continue
            duration = max(1, (b.end or b.start) - b.start)
            suffix = f" ({b.outcome})" if b.outcome in ("failed", "stopped", "interrupted") else ""
            label = gantt_text(b.label + suffix)
            lines.append(f"    {label} :{tags[b.outcome]}b{n}, {b.start}, {duration}ms")
    return "\n".join(lines)


def _section_order(section: str) -> tuple[int, str]:
    parts = section.split(" ", 2)
    return (int(parts[1]), parts[2]) if len(parts) == 3 and parts[1].isdigit() else (10**9, section)


def _retries(events: list[Event]) -> list[dict[str, Any]]:
    """Retry events, attributed to the task whose model call was in flight when there was exactly one."""
    in_flight: dict[str, int] = {}
    out = []
    for e in events:
        kind, task = e.get("type"), e.get("task")
        if kind == "model_call" and task:
            in_flight[task] = in_flight.get(task, 0) + 1
        elif kind == "usage" and task and in_flight.get(task):
            in_flight[task] -= 1
        elif kind in ("task_failed", "task_done", "task_stopped") and task:
            in_flight.pop(task, None)
        elif kind == "retry":
            busy = [t for t, n in in_flight.items() if n > 0]
            out.append({**e, "task": busy[0] if len(busy) == 1 else "?"})
    return out


def _estimates(state: RunState) -> list[str]:
    config = Config(llm=state.settings.llm, fake_time_scale=state.settings.fake_time_scale)
    summary = run_summary(state, config)
    est = state.estimates
    serial = est.get("serial", 0.0)
    out = ["| Schedule | Plan minutes | Speedup vs serial |", "|---|---:|---:|"]
    for name, key in (
        ("Serial", "serial"),
        ("Groups one at a time", "groups_sequential"),
        ("Theoretical (critical path)", "theoretical"),
        ("Practical (conflicts, agent limit)", "practical"),
    ):
        value = est.get(key, 0.0)
        out.append(
            f"| {name} | {minutes(value)} | {serial / value:.2f}x |" if value else f"| {name} | - | - |"
        )
    measured = summary["makespan_plan_minutes"]
    realized = f"{summary['speedup_realized']:.2f}x" if summary["speedup_realized"] else "-"
    out.append(f"| **Measured makespan** | {measured:g} ({state.makespan_s or 0:.1f} s) | {realized} |")
    out.append("")
    if summary["realized_share"] is not None:
        out.append(
            f"Realized {summary['realized_share']:.0%} of the theoretical speedup "
            f"({summary['speedup_theoretical']}x); "
            f"one plan minute = {summary['seconds_per_plan_minute']:g} s."
        )
    if state.settings.llm == "fake" and not state.settings.fake_time_scale:
        out.append("The fake backend ran without simulated latency: measured times are not comparable.")
    return out


def _usage_rows(state: RunState) -> list[str]:
    out = [
        "| Task | Input | Output | Cache write | Cache read | Cost (USD) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    keys = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    for t in state.tasks():
        if t.usage:
            counts = " | ".join(f"{int(t.usage.get(k) or 0):,}" for k in keys)
            out.append(f"| `{md_cell(t.id)}` | {counts} | {_cost(t.usage)} |")
    total = state.usage or sum_usage(t.usage for t in state.tasks())
    counts = " | ".join(f"{int(total.get(k) or 0):,}" for k in keys)
    out.append(f"| **Run total** | {counts} | {_cost(total)} |")
    return out


def _cost(usage: dict[str, Any]) -> str:
    """The cost cell: unknown (an unpriced model, an agent that reports nothing) is not $0."""
    cost = float(usage.get("cost_usd") or 0)
    if usage.get("cost_known") is False:
        return "unknown" if cost == 0 else f"{cost:.4f} + unknown"
    return f"{cost:.4f}"


def _text(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value if value is not None else "")


def _problems(state: RunState, events: list[Event]) -> list[str]:
    rows = []
    for e in events:
        kind = e.get("type")
        if kind in (
            "task_failed",
            "group_failed",
            "gate_failed",
            "resolve_failed",
            "merge_conflict",
            "stuck",
        ):
            who = e.get("task") or e.get("group") or ""
            detail = e.get("error") or e.get("paths") or e.get("remaining") or e.get("idle_s") or e.get("log")
            rows.append(
                f"| {str(e.get('ts', ''))[11:19]} | {kind} | `{md_cell(who)}` | {md_cell(_text(detail))} |"
            )
    for e in _retries(events):
        detail = f"{e.get('kind')}, attempt {e.get('attempt')}, waited {e.get('wait_s')} s"
        rows.append(f"| {str(e.get('ts', ''))[11:19]} | retry | `{md_cell(e['task'])}` | {detail} |")
    again = [t for t in state.tasks() if t.attempts > 1]
    out = ["| Time | Event | Task or group | Detail |", "|---|---|---|---|", *sorted(rows)] if rows else []
    if again:
        out += ["", "Tasks run more than once: " + ", ".join(f"`{t.id}` ({t.attempts}x)" for t in again)]
    return out or ["None."]


def _files_rows(state: RunState, plan: Plan) -> list[str]:
    """Predicted beside actual files per task, and the run's prediction precision and recall."""
    from agentwaves.state.stats import match, prediction

    rows, records = [], []
    for t in state.tasks():
        if t.kind == "gate" or t.id not in plan.by_id or t.state not in ("done", "failed"):
            continue
        record = {"predicted": plan.task(t.id).files, "actual": t.files_written}
        records.append(record)
        _, unused, uncovered = match(record)

        def cell(paths: list[str]) -> str:
            return md_cell(", ".join(f"`{p}`" for p in paths[:20]) + (" …" if len(paths) > 20 else "")) or "-"

        rows.append(
            f"| `{md_cell(t.id)}` | {cell(list(record['predicted']))} | {cell(t.files_written)} | "
            f"{cell(uncovered)} | {cell(unused)} | {cell(t.refused)} |"
        )
    if not rows:
        return ["No finished task yet."]
    p = prediction(records)
    head = ["| Task | Predicted | Written | Not predicted | Predicted, not written | Refused (leased) |"]
    out = [*head, "|---|---|---|---|---|---|", *rows, ""]
    if p["precision"] is not None and p["recall"] is not None:
        share = f"precision {p['precision']:.0%}, recall {p['recall']:.0%}"
        out.append(f"Prediction {share} ({p['tasks']} tasks).")
    return out


def report_markdown(state: RunState, events: list[Event], plan: Plan | None = None) -> str:
    tasks = state.tasks()
    done = sum(t.state == "done" for t in tasks)
    out = [f"# Run {state.run_id}: {md_cell(state.feature or 'no feature')}", ""]
    out.append(
        f"State **{state.state}** on branch `{state.branch}` (base `{state.base[:10]}`); "
        f"{done} of {len(tasks)} tasks done in {len(state.waves)} waves; schedule {state.settings.schedule}, "
        f"at most {state.settings.max_agents} agents; started {state.started or '-'}, "
        f"finished {state.finished or '-'}."
    )
    if state.error:
        out += ["", f"Error: {md_cell(state.error)}"]
    out += ["", "## Timeline", ""]
    bars = timeline(state, events)
    if not bars:
        out.append("Nothing ran yet.")
    elif len(bars) > MERMAID_MAX_TASKS:
        out.append(f"(Omitted: {len(bars)} bars are more than a chart can show.)")
    else:
        out += ["```mermaid", mermaid_gantt(state, bars), "```"]
    out += ["", "## Estimates and measured time", "", *_estimates(state)]
    out += ["", "## Waves", "", "| Wave | State | Commit | Groups | Tasks |", "|---:|---|---|---|---|"]
    for w in state.waves:
        ids = ", ".join(f"`{t.id}`" for g in w.groups for t in g.tasks)
        commit = f"`{w.commit[:10]}`" if w.commit else "-"
        out.append(
            f"| {w.index} | {w.state} | {commit} | {md_cell(', '.join(g.name for g in w.groups))} | {ids} |"
        )
    out += ["", "## Serialization points", ""]
    if state.serialization_points:
        out += ["| Tasks | Reason |", "|---|---|"]
        for p in state.serialization_points:
            out.append(f"| {md_cell(', '.join(p.get('tasks', [])))} | {md_cell(p.get('reason', ''))} |")
    else:
        out.append("None.")
    out += ["", "## Undeclared writes", ""]
    undeclared = [t for t in tasks if t.undeclared]
    out += [f"- `{t.id}`: {', '.join(f'`{f}`' for f in t.undeclared)}" for t in undeclared] or ["None."]
    if plan is not None:
        out += ["", "## Predicted and actual files", "", *_files_rows(state, plan)]
    out += ["", "## Failures and retries", "", *_problems(state, events)]
    out += ["", *report_lines(state, md_cell)]
    out += ["", "## Tokens and cost", "", *_usage_rows(state)]
    return "\n".join(out) + "\n"


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.md`` from the run's state and events; returns its path."""
    state = read_state(run_dir)
    path = run_dir / REPORT_FILE
    plan = None
    with contextlib.suppress(AgentwavesError, OSError):
        plan = load_plan(run_dir / "plan.yaml")
    atomic_write(path, report_markdown(state, read_events(run_dir / "events.jsonl"), plan))
    return path


def run_summary(state: RunState, config: Config) -> dict[str, Any]:
    """Measured makespan beside the plan's estimates, in the plan's minutes."""
    est = state.estimates
    per_minute = config.fake_time_scale if config.llm == "fake" and config.fake_time_scale > 0 else 60.0
    measured = (state.makespan_s or 0.0) / per_minute
    serial, theoretical = est.get("serial", 0.0), est.get("theoretical", 0.0)
    realized = theoretical / measured if measured > 0 and theoretical > 0 else None
    return {
        "makespan_s": state.makespan_s,
        "makespan_plan_minutes": round(measured, 2),
        "estimates": est,
        "speedup_theoretical": round(serial / theoretical, 3) if theoretical else None,
        "speedup_realized": round(serial / measured, 3) if measured > 0 else None,
        "realized_share": round(min(realized, 1.0), 3) if realized else None,
        "seconds_per_plan_minute": per_minute,
    }
