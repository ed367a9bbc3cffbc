"""The live display (driven by synthetic events), the plain lines, and the stuck-task watchdog."""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from agentwaves.config import Config
from agentwaves.run.watchdog import Watchdog
from agentwaves.state.events import EventLog
from agentwaves.state.store import (
    GroupState,
    RunSettings,
    RunState,
    StateStore,
    TaskState,
    WaveState,
    read_state,
)
from agentwaves.ui.live import LiveDisplay
from agentwaves.ui.plain import PlainPrinter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ev(type: str, **fields: Any) -> dict[str, Any]:
    return {"ts": "2026-11-22T10:00:00.000Z", "type": type, **fields}


EVENTS = [
    _ev("run_started", run="r1", branch="agentwaves/r1", schedule="waves", max_agents=4),
    _ev("group_started", group="api", wave=1, base="abc", worktree="/nowhere/api"),
    _ev("group_started", group="web", wave=1, base="abc", worktree="/nowhere/web"),
    _ev("task_started", task="t1", group="api", attempt=1),
    _ev("task_started", task="t2", group="web", attempt=1),
    _ev("model_call", task="t1", agent="implementer", call=1),
    _ev(
        "usage",
        task="t1",
        input_tokens=1200,
        output_tokens=300,
        cache_read_input_tokens=5000,
        cache_creation_input_tokens=0,
        cost_usd=0.0123,
        run_cost_usd=0.0123,
    ),
    _ev("tool", task="t1", tool="write_file", arg="src/api.py", error=False),
    _ev("model_call", task="t2", agent="implementer", call=1),
    _ev("task_done", task="t1", group="api", commit="f00", files=["src/api.py"]),
    _ev("group_done", group="api", head="f00"),
    _ev("stuck", task="t2", idle_s=301),
]


def _console() -> Console:
    return Console(record=True, force_terminal=True, width=120, color_system="truecolor")


def test_live_display_shows_groups_states_and_cost() -> None:
    con, clock = _console(), Clock()
    display = LiveDisplay(console=con, clock=clock, refresh_per_second=20)
    with display:
        for e in EVENTS:
            display(e)
            clock.now += 2
    text = con.export_text()
    for needle in ("run r1", "Wave 1", "api", "web", "✔ done", "⚠ stuck", "$0.0123", "1,200 in", "1/2 tasks"):
        assert needle in text, needle
    frame = _frame(display)
    assert "no progress for" in frame and "t1" in frame and "t2" in frame
    display(_ev("unstuck", task="t2", idle_s=0))
    display(_ev("tool", task="t2", tool="run", arg="pytest -q", error=False))
    frame = _frame(display)
    assert "stuck" not in frame and "run pytest -q" in frame and "● running" in frame


def test_live_display_says_a_task_whose_agent_finished_is_committing() -> None:
    display = LiveDisplay(console=_console(), clock=Clock())
    for e in EVENTS[:4]:
        display(e)
    display(_ev("tool", task="t1", tool="Write", arg="src/api.py", error=False))
    assert "Write src/api.py" in _frame(display)
    display(_ev("agent_finished", task="t1", group="api"))
    frame = _frame(display)
    assert "committing" in frame and "Write src/api.py" not in frame and "● running" in frame
    display(_ev("task_done", task="t1", group="api", commit="f00", files=["src/api.py"]))
    assert "committing" not in _frame(display)


def _frame(display: LiveDisplay) -> str:
    con = _console()
    con.print(display.render())
    return con.export_text()


def test_live_display_says_when_part_of_the_runs_cost_is_unknown() -> None:
    display = LiveDisplay(console=_console(), clock=Clock())
    display(_ev("run_started", run="r1", branch="agentwaves/r1"))
    display(_ev("usage", task="t1", cost_usd=0.0, cost_known=False, run_cost_usd=0.0, run_cost_known=False))
    assert "cost unknown" in _frame(display) and "$0.0000" not in _frame(display)
    display(_ev("usage", task="t2", cost_usd=0.02, cost_known=True, run_cost_usd=0.02, run_cost_known=False))
    assert "cost at least $0.0200 (part unknown)" in _frame(display)
    known = LiveDisplay(console=_console(), clock=Clock())
    known(_ev("usage", task="t2", cost_usd=0.02, cost_known=True, run_cost_usd=0.02, run_cost_known=True))
    assert "cost $0.0200" in _frame(known) and "unknown" not in _frame(known)


def test_live_display_collapses_finished_waves_and_counts_from_state(tmp_path: Path) -> None:
    state = _state(tmp_path, tasks=[["a", "b"], ["c"]])
    worktree = tmp_path / ".agentwaves" / "worktrees" / state.run_id / "g0"
    clock = Clock()
    display = LiveDisplay(console=_console(), clock=clock)
    display(_ev("run_started", run=state.run_id, branch=state.branch))
    display(_ev("group_started", group="g0", wave=1, worktree=str(worktree)))
    frame = _frame(display)
    assert "0/2 tasks" in frame and "Wave 2" in frame and "0/1 tasks" in frame and "○ pending" in frame
    for tid in ("a", "b"):
        display(_ev("task_started", task=tid, group="g0", attempt=1))
        display(_ev("task_done", task=tid, group="g0"))
    display(_ev("group_done", group="g0"))
    display(_ev("wave_committed", wave=1, commit="0123456789abcdef", groups=["g0"]))
    display(_ev("retry", kind="overloaded", attempt=1, wait_s=1.0))
    display(_ev("model_call", task="resolve:g0", agent="resolver", call=1))  # not a task: no panel
    frame = _frame(display)
    assert "commit 0123456789" in frame and "2/2 tasks" in frame and "1 retries" in frame
    assert "resolve:g0" not in frame
    display(_ev("task_started", task="c", group="g1", attempt=2))
    display(_ev("task_failed", task="c", group="g1", error="model call failed"))
    display(_ev("run_finished", run=state.run_id, state="failed"))
    frame = _frame(display)
    assert "✖ failed" in frame and "model call failed" in frame


def test_live_display_takes_events_from_many_threads() -> None:
    display = LiveDisplay(console=_console(), refresh_per_second=50)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(50):
                tid = f"t{n}-{i % 5}"
                display(_ev("task_started", task=tid, group=f"g{n}", attempt=1))
                display(_ev("usage", task=tid, input_tokens=1, output_tokens=1, run_cost_usd=0.001))
                display(_ev("task_done", task=tid, group=f"g{n}"))
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    with display:
        display(_ev("run_started", run="r", branch="agentwaves/r"))
        display(_ev("group_started", group="g0", wave=1, worktree="/x/g0"))
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for _ in range(20):
            display.render()
        for t in threads:
            t.join()
    assert not errors and display.tokens["input_tokens"] == 200


def test_plain_printer_lines() -> None:
    out = io.StringIO()
    printer = PlainPrinter(out)
    for e in EVENTS:
        printer(e)
    lines = out.getvalue().splitlines()
    assert "[10:00:00] task t1 started (group api, attempt 1)" in lines
    assert "[10:00:00] task t2 shows no progress for 301s" in lines
    assert not any("model_call" in ln or "usage" in ln for ln in lines)


# ------------------------------------------------------------------------------------------------ watchdog


def _state(tmp_path: Path, tasks: list[list[str]]) -> RunState:
    waves = [
        WaveState(index=i + 1, groups=[GroupState(name=f"g{i}", tasks=[TaskState(id=t) for t in ids])])
        for i, ids in enumerate(tasks)
    ]
    state = RunState(
        run_id="20261122-100000-abcd",
        repo=str(tmp_path),
        base="0" * 40,
        branch="agentwaves/20261122-100000-abcd",
        settings=RunSettings(llm="fake"),
        waves=waves,
    )
    StateStore.create(tmp_path / ".agentwaves" / "runs" / state.run_id, state)
    return state


@dataclass
class Ctx:
    store: StateStore
    config: Config
    events: EventLog
    progress: dict[str, float] = field(default_factory=dict)


def _ctx(tmp_path: Path, stuck_after: float) -> tuple[Ctx, list[dict[str, Any]]]:
    state = _state(tmp_path, tasks=[["a", "b"]])
    run_dir = tmp_path / ".agentwaves" / "runs" / state.run_id
    store = StateStore.load(run_dir)
    events = EventLog(run_dir / "events.jsonl")
    seen: list[dict[str, Any]] = []
    events.subscribe(seen.append)
    return Ctx(store, Config(llm="fake", stuck_after=stuck_after), events), seen


def test_watchdog_flags_once_and_clears_on_progress(tmp_path: Path) -> None:
    ctx, seen = _ctx(tmp_path, stuck_after=60)
    clock = Clock()
    dog = Watchdog(ctx, 1.0, clock=clock, wall=lambda: 1_800_000_000.0)  # type: ignore[arg-type]
    ctx.store.state.task("a").state = "running"
    ctx.store.state.task("b").state = "running"
    assert dog.check() == []
    clock.now += 30
    ctx.progress["b"] = clock.now
    clock.now += 31
    assert dog.check() == ["a"]
    assert [e["type"] for e in seen] == ["stuck"] and seen[0]["task"] == "a" and seen[0]["idle_s"] == 61
    on_disk = read_state(ctx.store.run_dir)
    assert (
        on_disk.task("a").stuck_since == "2027-01-15T07:58:59.000Z" and on_disk.task("b").stuck_since is None
    )
    clock.now += 100
    assert dog.check() == ["b"]  # b is stuck now; a is not flagged twice
    assert [e["type"] for e in seen] == ["stuck", "stuck"]
    ctx.progress["a"] = clock.now
    dog.check()
    assert seen[-1]["type"] == "unstuck" and seen[-1]["task"] == "a"
    assert read_state(ctx.store.run_dir).task("a").stuck_since is None
    ctx.store.state.task("b").state = "done"
    dog.check()
    assert read_state(ctx.store.run_dir).task("b").stuck_since is None


def test_watchdog_thread_and_status(tmp_path: Path) -> None:
    ctx, seen = _ctx(tmp_path, stuck_after=0.05)
    ctx.store.state.task("a").state = "running"
    ctx.store.state.task("b").kind = "gate"
    ctx.store.state.task("b").state = "running"  # gates are not watched
    dog = Watchdog(ctx, 0.01).start()  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        dog.stop()
    assert [(e["type"], e["task"]) for e in seen] == [("stuck", "a")]
    # stopping clears the flag: the run is over
    assert read_state(ctx.store.run_dir).task("a").stuck_since is None
    lines = (ctx.store.run_dir / "events.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["type"] == "stuck"
