"""The live terminal display of a run: a panel per group with its tasks, the run's tokens and cost.

:class:`LiveDisplay` is an event subscriber (a callable taking event dicts) and a context manager that runs
a :class:`rich.live.Live` refreshing itself from its own thread. Events arrive from worker threads, so the
model the display draws from is guarded by a lock. Waves that are done or not started yet take one line;
running waves show their groups as panels: each task's state, elapsed time and the call in progress.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from agentwaves.ui.inert import inert_data
from agentwaves.ui.term import console as make_console

STYLES = {
    "pending": ("○", "dim"),
    "running": ("●", "cyan"),
    "merging": ("⇄", "magenta"),
    "done": ("✔", "green"),
    "failed": ("✖", "red"),
    "stopped": ("■", "yellow"),
    "stuck": ("⚠", "bold red"),
}
TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@dataclass
class TaskView:
    id: str
    state: str = "pending"
    attempt: int = 0
    started: float | None = None
    finished: float | None = None
    last_progress: float | None = None
    activity: str = ""
    stuck: bool = False


@dataclass
class GroupView:
    name: str
    state: str = "pending"
    tasks: dict[str, TaskView] = field(default_factory=dict)


@dataclass
class WaveView:
    index: int
    state: str = "pending"
    commit: str | None = None
    note: str = ""
    groups: dict[str, GroupView] = field(default_factory=dict)


def cost_text(usage: dict[str, Any], cell: bool = False) -> str:
    """``cost $X`` (a table ``cell``: ``$X``); an unknown cost (an unpriced model, an agent that reports
    none) is not $0, and a partly unknown one is a lower bound."""
    cost = float(usage.get("cost_usd") or 0)
    if usage.get("cost_known") is False:
        text = "unknown" if cost == 0 else f"at least ${cost:.4f}"
        return text if cell else f"cost {text}" + (" (part unknown)" if cost else "")
    return f"${cost:.4f}" if cell else f"cost ${cost:.4f}"


def fmt_seconds(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class LiveDisplay:
    """Draws a run from its events. ``with LiveDisplay() as live: ... live(event)``."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        refresh_per_second: float = 4.0,
        stuck_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if console is None:
            console = make_console()
        self.console = console
        self.refresh_per_second = refresh_per_second
        self.stuck_after = stuck_after
        self._clock = clock
        self._lock = threading.Lock()
        self._live: Live | None = None
        self.run_id = ""
        self.branch = ""
        self.state = "starting"
        self.started: float | None = None
        self.finished: float | None = None
        self.tokens: dict[str, int] = dict.fromkeys(TOKEN_KEYS, 0)
        self.cost = 0.0
        self.cost_known = True  # false once any cost in the run's total is unknown (an unpriced model)
        self.retries = 0
        self.last_retry = ""
        self.waves: dict[int, WaveView] = {}
        self._task_group: dict[str, tuple[int, str]] = {}
        self._layout_loaded = False

    # ---------------------------------------------------------------------------------- context manager
    def __enter__(self) -> LiveDisplay:
        self._live = Live(
            console=self.console,
            get_renderable=self.render,
            refresh_per_second=self.refresh_per_second,
            auto_refresh=True,
            transient=False,
        )
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # ---------------------------------------------------------------------------------- events
    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._apply(inert_data(event))

    def _apply(self, e: dict[str, Any]) -> None:
        now = self._clock()
        kind = str(e.get("type", ""))
        tid = e.get("task") if isinstance(e.get("task"), str) else None
        known = tid is not None and (tid in self._task_group or kind in ("task_started", "gate_started"))
        task = self._task(tid) if known and tid is not None else None
        if kind == "usage":
            for key in TOKEN_KEYS:
                self.tokens[key] += int(e.get(key) or 0)
            self.cost = float(e.get("run_cost_usd") or self.cost)
            self.cost_known = self.cost_known and e.get("run_cost_known") is not False
        if kind == "run_started":
            self.run_id, self.branch, self.state = str(e.get("run", "")), str(e.get("branch", "")), "running"
            self.started = self.started or now
            if e.get("run_dir"):
                self._load_layout(Path(str(e["run_dir"])))
        elif kind == "run_finished":
            self.state, self.finished = str(e.get("state", "done")), now
        elif kind == "group_started":
            parents = Path(str(e.get("worktree") or "")).parents
            if not self._layout_loaded and self.run_id and len(parents) > 2:
                self._load_layout(parents[2] / "runs" / self.run_id)  # <state dir>/worktrees/<run>/<group>
            wave = int(e.get("wave") or 0)
            self._group(wave, str(e.get("group"))).state = "running"
            self._wave(wave).state = "running"
        elif kind in ("group_done", "group_failed"):
            for w in self.waves.values():
                if e.get("group") in w.groups:
                    w.groups[str(e["group"])].state = "done" if kind == "group_done" else "failed"
        elif kind == "wave_merging":
            self._wave(int(e.get("wave") or 0)).state = "merging"
        elif kind == "wave_committed":
            w = self._wave(int(e.get("wave") or 0))
            w.state, w.commit, w.note = "done", str(e.get("commit", "")), ""
        elif kind == "merge_conflict":
            self._wave(int(e.get("wave") or 0)).note = f"resolving conflicts of {e.get('group')}"
        elif kind == "retry":
            self.retries += 1
            self.last_retry = (
                f"{e.get('task')}: {e.get('error') or e.get('kind')}, retrying in {e.get('wait_s')}s"
            )
            if task is not None:
                task.activity = f"retrying in {e.get('wait_s')}s: {e.get('error') or e.get('kind')}"
        elif task is not None:
            self._task_event(task, kind, e, now)

    def _task_event(self, task: TaskView, kind: str, e: dict[str, Any], now: float) -> None:
        if kind in ("task_started", "gate_started"):
            task.state, task.started, task.finished, task.stuck = "running", now, None, False
            task.attempt = int(e.get("attempt") or task.attempt + 1)
            task.last_progress = now
            task.activity = f"$ {e.get('command')}" if kind == "gate_started" else "starting"
            for w in self.waves.values():
                for g in w.groups.values():
                    if task.id in g.tasks and g.state == "pending":
                        g.state, w.state = "running", "running" if w.state == "pending" else w.state
        elif kind in ("task_done", "gate_done", "task_failed", "gate_failed", "task_stopped"):
            task.state = {"task_done": "done", "gate_done": "done", "task_stopped": "stopped"}.get(
                kind, "failed"
            )
            task.finished, task.stuck = now, False
            task.activity = str(e.get("error") or e.get("reason") or "")[:80] if task.state != "done" else ""
        elif kind in ("model_call", "usage", "tool"):
            task.last_progress, task.stuck = now, False
            if kind == "model_call":
                task.activity = f"thinking (call {e.get('call')})"
            elif kind == "tool" and not (e.get("error") and task.activity.startswith("write refused")):
                task.activity = f"{e.get('tool')} {e.get('arg') or ''}".strip()[:60]
        elif kind == "write_refused":
            task.activity = f"write refused: {e.get('path')} (owner {e.get('owner')})"[:60]
        elif kind == "task_sent_back":
            task.activity = "sent back: leased writes undone"[:60]
        elif kind == "agent_finished":  # its slot is free; the task's commit is being made
            task.activity = "committing"
        elif kind == "stuck":
            task.stuck = True
        elif kind == "unstuck":
            task.stuck, task.last_progress = False, now

    # ---------------------------------------------------------------------------------- model
    def _wave(self, index: int) -> WaveView:
        return self.waves.setdefault(index, WaveView(index))

    def _group(self, wave: int, name: str) -> GroupView:
        for w in self.waves.values():
            if name in w.groups:
                return w.groups[name]
        return self._wave(wave).groups.setdefault(name, GroupView(name))

    def _task(self, tid: str) -> TaskView:
        if tid not in self._task_group:
            running = [w.index for w in self.waves.values() if w.state in ("running", "merging")]
            wave = max(running or [max(self.waves, default=0)])
            self._group(wave, tid).tasks[tid] = TaskView(tid)
            self._task_group[tid] = (wave, tid)
        wave, group = self._task_group[tid]
        return self._group(wave, group).tasks[tid]

    def _load_layout(self, run_dir: Path) -> None:
        """Learn every wave, group and task up front from the run's ``state.json`` (best effort)."""
        self._layout_loaded = True
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
            for w in data["waves"]:
                wave = self._wave(int(w["index"]))
                wave.state = w.get("state", "pending") if w.get("state") == "done" else wave.state
                wave.commit = wave.commit or w.get("commit")
                for g in w["groups"]:
                    group = self._group(wave.index, g["name"])
                    for t in g["tasks"]:
                        view = group.tasks.setdefault(t["id"], TaskView(t["id"]))
                        if t.get("state") == "done" and view.state == "pending":
                            view.state = "done"
                        self._task_group[t["id"]] = (wave.index, g["name"])

    # ---------------------------------------------------------------------------------- rendering
    def render(self) -> RenderableType:
        with self._lock:
            return self._render(self._clock())

    def _render(self, now: float) -> RenderableType:
        parts: list[RenderableType] = [self._header(now)]
        for index in sorted(self.waves):
            parts.extend(self._render_wave(self.waves[index], now))
        return Group(*parts)

    def _header(self, now: float) -> Text:
        elapsed = ((self.finished or now) - self.started) if self.started is not None else 0.0
        icon, style = STYLES.get(self.state, ("●", "cyan"))
        t = self.tokens
        text = Text.assemble(
            ("agentwaves ", "bold"),
            (f"run {self.run_id or '…'} ", "bold"),
            (f"{icon} {self.state}", style),
            f"  {fmt_seconds(elapsed)}  branch {self.branch or '-'}\n",
            f"tokens {t['input_tokens']:,} in · {t['output_tokens']:,} out · "
            f"{t['cache_read_input_tokens']:,} cache read · "
            f"{t['cache_creation_input_tokens']:,} cache write  ",
            (cost_text({"cost_usd": self.cost, "cost_known": self.cost_known}), "bold"),
        )
        if self.retries:
            text.append(f"  {self.retries} retries", style="yellow")
            if self.last_retry:
                text.append(f"\nlast retry: {self.last_retry}", style="yellow")
        return text

    def _render_wave(self, w: WaveView, now: float) -> list[RenderableType]:
        tasks = [t for g in w.groups.values() for t in g.tasks.values()]
        done = sum(t.state == "done" for t in tasks)
        icon, style = STYLES.get(w.state, ("●", "cyan"))
        line = Table.grid(padding=(0, 1))
        line.add_row(
            Text(f"Wave {w.index}", style="bold"),
            Text(f"{icon} {w.state}", style=style),
            ProgressBar(total=max(1, len(tasks)), completed=done, width=20),
            Text(f"{done}/{len(tasks)} tasks"),
            Text(
                (f"commit {w.commit[:10]}  " if w.commit else "") + (w.note or ", ".join(w.groups)),
                style="dim",
            ),
        )
        if w.state not in ("running", "merging"):
            return [line]
        panels = [self._panel(g, now) for g in w.groups.values()]
        return [line, Columns(panels, padding=(0, 1))]

    def _panel(self, g: GroupView, now: float) -> Panel:
        table = Table.grid(padding=(0, 1))
        for _ in range(3):
            table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, max_width=60)
        for t in g.tasks.values():
            state = t.state
            idle = now - t.last_progress if t.last_progress is not None and state == "running" else 0.0
            if state == "running" and (t.stuck or (self.stuck_after and idle > self.stuck_after)):
                state = "stuck"
            icon, style = STYLES.get(state, ("●", "cyan"))
            elapsed = ((t.finished or now) - t.started) if t.started is not None else None
            activity = t.activity
            if state == "stuck":
                activity = f"no progress for {fmt_seconds(idle)}" + (f" ({activity})" if activity else "")
            table.add_row(
                Text(t.id, style="bold"),
                Text(f"{icon} {state}", style=style),
                Text(fmt_seconds(elapsed) if elapsed is not None else "", style="dim"),
                Text(activity, style="red" if t.state == "failed" else "", overflow="ellipsis", no_wrap=True),
            )
        icon, style = STYLES.get(g.state, ("●", "cyan"))
        title = Text.assemble((g.name, "bold"), " ", (f"{icon} {g.state}", style))
        return Panel(table, title=title, title_align="left", border_style=style, expand=False)
