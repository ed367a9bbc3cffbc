"""Plain, timestamped progress lines for runs without a terminal (CI, pipes)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from agentwaves.ui.inert import inert_data

FORMATS: dict[str, str] = {
    "run_started": "run {run} started: schedule {schedule}, at most {max_agents} agents, branch {branch}",
    "group_started": "wave {wave}: group {group} started",
    "task_started": "task {task} started (group {group}, attempt {attempt})",
    "task_done": "task {task} done",
    "task_failed": "task {task} FAILED: {error}",
    "task_stopped": "task {task} stopped: {reason}",
    "node_lost": "task {task}: lost its Ray node {node}; retrying on another node",
    "gate_started": "gate {task} running: {command}",
    "gate_done": "gate {task} passed",
    "gate_failed": "gate {task} FAILED (exit {exit}); output in {log}",
    "group_done": "group {group} done",
    "group_failed": "group {group} FAILED: {error}",
    "wave_merging": "wave {wave}: merging",
    "merge_conflict": "wave {wave}: group {group} conflicts in {paths}; asking the resolver",
    "resolved": "wave {wave}: resolver fixed {paths}",
    "resolve_failed": "wave {wave}: resolver could not fix {remaining}",
    "resolver_refused": "wave {wave}: resolver changes outside the conflicts refused for {group}: {paths}",
    "wave_committed": "wave {wave} committed {commit:.10} ({groups})",
    "undeclared_writes": "task {task} wrote undeclared files: {files}",
    "write_refused": "task {task}: write to {path} REFUSED (leased by task {owner} in group {owner_group})",
    "task_sent_back": "task {task} sent back: it wrote {paths}, leased by another group",
    "retry": "model call of {task} failed ({error}); attempt {attempt} failed, retrying in {wait_s}s",
    "concurrency": "concurrency now {capacity} ({reason})",
    "stuck": "task {task} shows no progress for {idle_s}s",
    "run_finished": "run {run} {state}",
}


def format_event(event: dict[str, Any]) -> str | None:
    fmt = FORMATS.get(event.get("type", ""))
    if fmt is None:
        return None
    fields = {k: (", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in inert_data(event).items()}
    try:
        text = fmt.format(**fields)
    except (KeyError, ValueError, TypeError):
        text = event["type"]
    return f"[{str(event.get('ts', ''))[11:19]}] {text}"


class PlainPrinter:
    """An event subscriber that prints one line per interesting event."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        line = format_event(event)
        if line:
            print(line, file=self.out, flush=True)
