"""Looking at runs without changing them: the data behind ``status``, ``runs``, ``review`` and ``logs``.

Every function returns plain, JSON-ready dicts; the CLI renders the same dict with rich or dumps it as JSON
(shapes documented in ``docs/cli.md``). Only ``state.json``, ``events.jsonl``, the run's files and git are
read; nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentwaves.errors import AgentwavesError, UsageError
from agentwaves.git.ops import STATE_DIR, GitError, diff_stat, find_repo_root, run_git
from agentwaves.llm.usage import sum_usage
from agentwaves.run.feedback.views import group_extra, run_extra, task_extra, wave_extra
from agentwaves.state.events import read_events
from agentwaves.state.store import RepoLock, RunState, TaskState, WaveState, list_runs, read_state
from agentwaves.state.store import resolve_run_dir as _resolve_run_dir
from agentwaves.state.store import runs_dir as _runs_dir

LANDED_FILE = "landed.json"


@dataclass
class RunRef:
    """One run, located: the repository root, its ``.agentwaves`` directory, the run directory, its state."""

    root: Path
    state_dir: Path
    run_dir: Path
    state: RunState

    @property
    def run_id(self) -> str:
        return self.state.run_id

    def log_path(self, task: str) -> Path:
        return self.run_dir / "logs" / f"{task}.log"

    def rel(self, path: Path) -> str:
        """``path`` relative to the repository root when it is inside it."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def state_dir_of(repo: Path) -> tuple[Path, Path]:
    """(repository root, its ``.agentwaves`` directory); the directory is not created."""
    root = find_repo_root(repo)
    return root, root / STATE_DIR


def open_run(repo: Path, run_id: str | None) -> RunRef:
    """The run ``run_id`` (a unique prefix is enough) or the latest one; UsageError (exit 2) otherwise."""
    root, state_dir = state_dir_of(repo)
    run_dir = _resolve_run_dir(state_dir, run_id)
    return RunRef(root, state_dir, run_dir, read_state(run_dir))


def lock_holder(state_dir: Path) -> dict[str, Any] | None:
    """``{"pid", "run"}`` of the live process executing in this repository, or None."""
    lock = RepoLock(state_dir)
    if not lock.is_held_elsewhere():
        return None
    info: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        info = json.loads(lock.path.read_text() or "{}")
    return {"pid": info.get("pid"), "run": info.get("run")}


def holds_run(holder: dict[str, Any] | None, run_id: str) -> bool:
    """True if the lock ``holder`` (from :func:`lock_holder`) is executing ``run_id`` (or is starting up)."""
    return holder is not None and holder.get("run") in (run_id, "pending", None)


def is_live(ref: RunRef) -> bool:
    """True while a process is executing this run (it holds the repository lock for it)."""
    return holds_run(lock_holder(ref.state_dir), ref.run_id)


def effective_state(state: RunState, live: bool) -> str:
    """The recorded state, or ``interrupted`` for a run that says running but has no live process."""
    if state.state in ("running", "pending") and not live:
        return "interrupted"
    return state.state


def read_landed(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / LANDED_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def seconds_between(start: str | None, end: str | None, now: datetime | None = None) -> float | None:
    """Seconds from ``start`` to ``end`` (or to ``now`` when ``end`` is None), rounded to 0.1 s."""
    a = _parse_ts(start)
    if a is None:
        return None
    b = _parse_ts(end) if end else (now or datetime.now(UTC))
    if b is None:
        return None
    return round(max(0.0, (b - a) / timedelta(seconds=1)), 1)


def run_usage(ref: RunRef, live: bool) -> dict[str, Any]:
    """The run's tokens and cost (its final total, or its calls so far); unknown if a task's or call's is."""
    tasks = [t.usage for t in ref.state.tasks()]
    if ref.state.usage and not live:
        total = sum_usage([ref.state.usage])
    else:
        calls = [e for e in read_events(ref.run_dir / "events.jsonl") if e.get("type") == "usage"]
        total = sum_usage(calls or tasks)
    return total | {"cost_known": total["cost_known"] and sum_usage(tasks)["cost_known"]}


def _hint(ref: RunRef, state: str, landed: dict[str, Any] | None) -> str:
    rid = ref.run_id
    if state == "interrupted":
        return f"interrupted (resume with `agentwaves resume {rid}`)"
    if state in ("failed", "stopped"):
        return f"resume with `agentwaves resume {rid}`"
    if state == "done" and landed:
        return f"landed on {landed.get('branch')} at {str(landed.get('landed'))[:10]}"
    if state == "done":
        return f"review with `agentwaves review {rid}`, then land with `agentwaves land {rid}`"
    return f"running: follow with `agentwaves status {rid} --watch`"


# ------------------------------------------------------------------------------------------------ status


def task_status(ref: RunRef, ts: TaskState, live: bool, now: datetime) -> dict[str, Any]:
    stuck_for = None
    if live and ts.state == "running" and ts.stuck_since:
        stuck_for = seconds_between(ts.stuck_since, None, now)
    item = {k: getattr(ts, k) for k in ("id", "title", "kind", "state", "attempts", "started", "finished")}
    item["elapsed_s"] = seconds_between(ts.started, ts.finished, now) if ts.state != "pending" else None
    item |= {"commit": ts.commit, "error": ts.error, "undeclared": list(ts.undeclared), "node": ts.node}
    item["refused"] = list(ts.refused)
    item |= {"stuck_since": ts.stuck_since if stuck_for is not None else None, "stuck_for_s": stuck_for}
    return item | {"usage": dict(ts.usage), "log": ref.rel(ref.log_path(ts.id))}


def _wave_status(ref: RunRef, w: WaveState, live: bool, now: datetime) -> dict[str, Any]:
    groups: list[dict[str, Any]] = []
    for g in w.groups:
        tasks = [task_status(ref, t, live, now) for t in g.tasks]
        item: dict[str, Any] = {"name": g.name, "state": g.state, "branch": g.branch or None}
        item |= {"done": sum(t["state"] == "done" for t in tasks), "total": len(tasks), "error": g.error}
        item |= {"conflicts": list(g.conflicts), "logs": [t["log"] for t in tasks if t["state"] == "failed"]}
        groups.append(item | group_extra(w, g) | {"tasks": tasks})
    wave = {k: getattr(w, k) for k in ("index", "state", "commit", "started", "finished")}
    wave |= {"done": sum(g["done"] for g in groups), "total": sum(g["total"] for g in groups)}
    return wave | {"held": list(w.held), "groups": groups}


def status_data(ref: RunRef, now: datetime | None = None) -> dict[str, Any]:
    """The ``status --json`` document of one run (see docs/cli.md)."""
    now = now or datetime.now(UTC)
    holder = lock_holder(ref.state_dir)
    live = holds_run(holder, ref.run_id)
    s = ref.state
    state = effective_state(s, live)
    landed = read_landed(ref.run_dir)
    waves = [_wave_status(ref, w, live, now) for w in s.waves]
    done = sum(w["done"] for w in waves)
    total = sum(w["total"] for w in waves)
    return {
        "run": s.run_id,
        "branch": s.branch,
        "base": s.base,
        "feature": s.feature,
        "state": state,
        "recorded_state": s.state,
        "live": live,
        "pid": holder.get("pid") if live and holder else None,
        "hint": _hint(ref, state, landed),
        "error": s.error,
        "created": s.created,
        "started": s.started,
        "finished": s.finished,
        "elapsed_s": seconds_between(s.started, s.finished if not live else None, now),
        "makespan_s": s.makespan_s,
        "schedule": s.settings.schedule,
        "llm": s.settings.llm,
        "progress": {"done": done, "total": total, "percent": round(100 * done / total) if total else 0},
        "stuck": [
            t["id"] for w in waves for g in w["groups"] for t in g["tasks"] if t["stuck_for_s"] is not None
        ],
        "landed": landed,
        "usage": run_usage(ref, live),
        "waves": waves,
    } | run_extra(s)


def runs_data(repo: Path) -> dict[str, Any]:
    """Every run of the repository, oldest first (``agentwaves runs``)."""
    root, state_dir = state_dir_of(repo)
    holder = lock_holder(state_dir)
    out = []
    for rid in list_runs(state_dir):
        run_dir = _runs_dir(state_dir) / rid
        try:
            ref = RunRef(root, state_dir, run_dir, read_state(run_dir))
        except AgentwavesError:  # an unreadable run must not hide the other runs
            out.append({"run": rid, "state": "unreadable"})
            continue
        tasks, live, landed = ref.state.tasks(), holds_run(holder, rid), read_landed(run_dir)
        item: dict[str, Any] = {
            "run": rid,
            "state": effective_state(ref.state, live),
            "branch": ref.state.branch,
        }
        item |= {"feature": ref.state.feature, "created": ref.state.created}
        item |= {"done": sum(t.state == "done" for t in tasks), "total": len(tasks)}
        item |= {"landed": landed.get("landed") if landed else None}
        out.append(item | {k: v for k, v in run_usage(ref, live).items() if k in ("cost_usd", "cost_known")})
    return {"runs": sorted(out, key=lambda r: (str(r.get("created", "")), r["run"]))}


# ------------------------------------------------------------------------------------------------ review


def _commit_exists(root: Path, sha: str) -> bool:
    return run_git(root, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0


def _files(root: Path, commit: str) -> list[dict[str, Any]]:
    try:
        changes = diff_stat(root, f"{commit}^", commit)
    except GitError:
        return []
    return [{"path": c.path, "status": c.status, "added": c.added, "removed": c.removed} for c in changes]


def task_patch(root: Path, sha: str) -> str:
    """The diff a task's own commit made (``git show``), without the commit header."""
    args = ("show", "--format=", "--patch", "--no-color", "--no-ext-diff", "--no-textconv", sha)
    return run_git(root, *args).stdout


def wave_handoff(ref: RunRef, w: WaveState) -> str:
    path = ref.run_dir / "handoffs" / f"wave-{w.index}.md"
    with contextlib.suppress(OSError):
        return path.read_text(encoding="utf-8")
    out = [f"## Wave {w.index}"]
    for g in w.groups:
        for t in g.tasks:
            if t.handoff is not None:
                out.append(f"- **{t.id}** ({g.name}): {t.handoff.summary.strip()}")
    return "\n".join(out) + "\n"


def _review_task(ref: RunRef, group: str, t: TaskState, diff: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"id": t.id, "group": group}
    item |= {k: getattr(t, k) for k in ("title", "kind", "state", "attempts", "commit")}
    item |= {"summary": t.handoff.summary if t.handoff else "", "notes": t.handoff.notes if t.handoff else ""}
    item |= {"files_written": list(t.files_written), "undeclared": list(t.undeclared), "usage": dict(t.usage)}
    item["refused"] = list(t.refused)
    item |= task_extra(t)
    if diff:
        available = bool(t.commit) and _commit_exists(ref.root, t.commit or "")
        item["files"] = _files(ref.root, t.commit) if available and t.commit else []
        item["patch"] = task_patch(ref.root, t.commit) if available and t.commit else None
    return item


def _review_wave(ref: RunRef, w: WaveState, diff: bool) -> dict[str, Any]:
    files = _files(ref.root, w.commit) if w.commit and _commit_exists(ref.root, w.commit) else []
    tasks = [_review_task(ref, g.name, t, diff) for g in w.groups for t in g.tasks]
    return {
        "index": w.index,
        "state": w.state,
        "commit": w.commit,
        "started": w.started,
        "finished": w.finished,
        "groups": [
            {"name": g.name, "state": g.state, "branch": g.branch or None, "tasks": [t.id for t in g.tasks]}
            | {"resolved": list(g.resolved), "conflicts": list(g.conflicts)}
            | {"resolver_refused": list(g.resolver_refused)}
            for g in w.groups
        ],
        "tasks": tasks,
        "files": files,
        "added": sum(f["added"] or 0 for f in files),
        "removed": sum(f["removed"] or 0 for f in files),
        "undeclared": [{"task": t["id"], "files": t["undeclared"]} for t in tasks if t["undeclared"]],
        "refused": [{"task": t["id"], "files": t["refused"]} for t in tasks if t["refused"]],
        "handoff": wave_handoff(ref, w),
        "usage": sum_usage(t["usage"] for t in tasks),
    } | wave_extra(w)


def review_data(ref: RunRef, wave: int | None = None, diff: bool = False) -> dict[str, Any]:
    """The ``review --json`` document: one entry per wave (or only ``wave``), with patches if ``diff``."""
    s = ref.state
    waves = s.waves
    if wave is not None:
        waves = [w for w in s.waves if w.index == wave]
        if not waves:
            have = f"waves 1-{len(s.waves)}" if s.waves else "no waves"
            raise UsageError(f"run {s.run_id} has no wave {wave} (it has {have})")
    return {
        "run": s.run_id,
        "branch": s.branch,
        "base": s.base,
        "state": effective_state(s, is_live(ref)),
        "waves": [_review_wave(ref, w, diff) for w in waves],
        "history": [h.model_dump() for h in s.history],
    }


# ------------------------------------------------------------------------------------------------ logs


def task_log_path(ref: RunRef, task: str) -> Path:
    """The log of ``task`` (a task id, or a resolver log such as ``resolve-2-web``); UsageError if unknown."""
    ids = [t.id for t in ref.state.tasks()]
    path = ref.log_path(task)
    if task in ids or (os.sep not in task and "/" not in task and path.is_file()):
        return path
    shown = ", ".join(ids[:8]) + (", …" if len(ids) > 8 else "")
    raise UsageError(f"run {ref.run_id} has no task {task!r} (tasks: {shown or 'none'})")


def read_log_records(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete log lines from byte ``offset``: ``{"kind", "data"}`` records (plain text lines become
    ``{"kind": "text", "data": line}``); returns the records and the offset after the last one."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
    except FileNotFoundError:
        return [], offset
    end = chunk.rfind(b"\n") + 1
    records: list[dict[str, Any]] = []
    for raw in chunk[:end].decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            rec = None
        if isinstance(rec, dict) and "kind" in rec:
            records.append(rec)
        else:
            records.append({"kind": "text", "data": raw})
    return records, offset + end


def follow_log(
    ref: RunRef,
    task: str,
    emit: Callable[[dict[str, Any]], None],
    *,
    follow: bool = False,
    poll: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Hand every record of ``task``'s log to ``emit``; with ``follow``, keep polling until the task is
    done or failed, or the run is no longer executing. Returns the task's last known state."""
    path = task_log_path(ref, task)
    offset = 0
    while True:
        records, offset = read_log_records(path, offset)
        for rec in records:
            emit(rec)
        state = _task_state(ref, task)
        if not follow or state in ("done", "failed", None) or not is_live(ref):
            records, offset = read_log_records(path, offset)
            for rec in records:
                emit(rec)
            return state or "unknown"
        sleep(poll)


def _task_state(ref: RunRef, task: str) -> str | None:
    try:
        return read_state(ref.run_dir).task(task).state
    except (KeyError, AgentwavesError):
        return None
