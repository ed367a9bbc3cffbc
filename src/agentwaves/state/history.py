"""``.agentwaves/history.jsonl``: one record per finished task of every run, to learn from.

Each record holds the task's estimate and measured duration, tokens and cost, its predicted files and the
files it actually wrote (paths only, capped), the planner's model, the run and feature, and a *kind* (a
rough category from the predicted files, e.g. ``code:src/app``, ``tests``, ``docs``, ``gate``) that
calibration groups by. Records are appended at the end of each ``execute`` / ``resume``; a task is
recorded once per run and state (a failed task that a resume finishes gets a second, ``done`` record).
A corrupt line is skipped by readers with one warning naming the file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from agentwaves.plan.model import Plan, Task
from agentwaves.state.store import RunState, now_iso

HISTORY_FILE = "history.jsonl"
MAX_PATHS = 100  # files kept per record (predicted and actual)
PLANNER_HEADER = "# agentwaves planner model: "
_DOC_SUFFIXES = (".md", ".rst", ".txt", ".adoc")
_TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def history_path(state_dir: Path) -> Path:
    return state_dir / HISTORY_FILE


def task_kind(task: Task) -> str:
    """A rough category of ``task`` from its predicted files: ``gate``, ``docs``, ``tests``,
    ``code:<first two directories of its first file>``, or ``other`` without files."""
    if task.kind == "gate":
        return "gate"
    files = [f.strip().rstrip("/") for f in task.files if f.strip()]
    if not files:
        return "other"
    if all(f.lower().endswith(_DOC_SUFFIXES) for f in files):
        return "docs"
    if all(f.startswith(("tests/", "test/")) or "/test_" in f or f.startswith("test_") for f in files):
        return "tests"
    parts = files[0].split("/")[:-1][:2]
    return "code:" + ("/".join(parts) or ".")


def planner_model_of(plan_text: str) -> str | None:
    """The planner model ``agentwaves plan`` noted in the plan file's first line, if any."""
    first = plan_text.split("\n", 1)[0]
    return first[len(PLANNER_HEADER) :].strip() or None if first.startswith(PLANNER_HEADER) else None


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (b - a).total_seconds())


def run_records(
    state: RunState, plan: Plan, *, seconds_per_minute: float, model: str, planner_model: str | None
) -> list[dict[str, Any]]:
    """One record per task of ``state`` that is done or failed."""
    out = []
    for ts in state.tasks():
        if ts.state not in ("done", "failed") or ts.id not in plan.by_id:
            continue
        task = plan.task(ts.id)
        duration = _seconds(ts.started, ts.finished)
        usage = ts.usage or {}
        out.append(
            {
                "ts": now_iso(),
                "run": state.run_id,
                "feature": state.feature,
                "task": ts.id,
                "title": ts.title,
                "kind": task_kind(task),
                "state": ts.state,
                "estimate": task.estimate,
                "duration_s": None if duration is None else round(duration, 3),
                "measured_minutes": None if duration is None else round(duration / seconds_per_minute, 4),
                "seconds_per_plan_minute": seconds_per_minute,
                "tokens": sum(int(usage.get(k) or 0) for k in _TOKEN_KEYS),
                "cost_usd": round(float(usage.get("cost_usd") or 0.0), 6),
                "predicted": list(task.files)[:MAX_PATHS],
                "actual": list(ts.files_written)[:MAX_PATHS],
                "actual_count": len(ts.files_written),
                "refused": list(ts.refused)[:MAX_PATHS],
                "planner_model": planner_model,
                "model": model,
                "schedule": state.settings.schedule,
                "attempts": ts.attempts,
            }
        )
    return out


def append_run(state_dir: Path, records: list[dict[str, Any]]) -> int:
    """Append the records not yet in the history (same run, task and state); returns how many."""
    path = history_path(state_dir)
    runs = {r["run"] for r in records}
    old = [r for r in read_history(path, warn=None) if r.get("run") in runs]
    seen = {(r.get("run"), r.get("task"), r.get("state")) for r in old}
    new = [r for r in records if (r["run"], r["task"], r["state"]) not in seen]
    if new:
        with path.open("a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in new))
    return len(new)


def _warn(message: str) -> None:
    print(f"agentwaves: warning: {message}", file=sys.stderr)


def read_history(path: Path, warn: Callable[[str], None] | None = _warn) -> list[dict[str, Any]]:
    """Every valid record of ``path`` (none if it is missing); corrupt lines are skipped with one
    warning naming the file and the lines."""
    if not path.is_file():
        return []
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        if warn is not None:
            warn(f"{path}: cannot read the history ({exc.strerror or exc}); ignored")
        return []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad.append(number)
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("task"), str):
            bad.append(number)
            continue
        records.append(rec)
    if bad and warn is not None:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        warn(f"{path}: skipped {len(bad)} corrupt line{'s' if len(bad) > 1 else ''} ({shown})")
    return records


def repo_history(repo: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The history file of the repository containing ``repo`` and its records (nothing is created)."""
    from agentwaves.git.ops import STATE_DIR, find_repo_root

    path = history_path(find_repo_root(repo) / STATE_DIR)
    return path, read_history(path)
