"""The run report (report.md): a Gantt chart of what ran, estimates vs measured, problems, tokens and cost."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentwaves.run.report import gantt_text, report_markdown, timeline, write_report
from agentwaves.state.store import GroupState, RunSettings, RunState, TaskState, WaveState, read_state
from tests.e2e.helpers import write_yaml

PLAN = {
    "feature": "report: me #1",
    "tasks": [
        {"id": "a", "title": "A", "files": ["a.py"], "estimate": 2},
        {"id": "b.x", "title": "B", "files": ["b.py"], "estimate": 3},
        {"id": "c", "title": "C", "files": ["c.py"], "depends_on": ["a", "b.x"], "estimate": 1},
        {"id": "check", "title": "Check", "kind": "gate", "command": "true", "depends_on": ["c"]},
    ],
}


def _gantt(text: str) -> list[str]:
    block = re.search(r"```mermaid\n(gantt\n.*?)```", text, re.S)
    assert block, text
    return block.group(1).splitlines()


def _run(
    make_repo: Callable[..., Path], run_cli: Callable[..., Any], tmp_path: Path, script: dict[str, Any]
) -> Path:
    repo = make_repo({"README.md": "# r\n"})
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    fake = write_yaml(tmp_path / "s.yaml", script)
    run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", fake)
    return next((repo / ".agentwaves" / "runs").iterdir())


def test_report_of_a_done_run(
    make_repo: Callable[..., Path], run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    script = {
        "tasks": {
            "a": [
                {"tool": "write_file", "input": {"path": "a.py", "content": "A = 1\n"}},
                {"tool": "write_file", "input": {"path": "extra.txt", "content": "x\n"}},
                {"tool": "finish", "input": {"summary": "a done"}},
            ]
        },
        "faults": [{"task": "c", "call": 1, "error": "overloaded"}],
    }
    run_dir = _run(make_repo, run_cli, tmp_path, script)
    path = write_report(run_dir)
    assert path == run_dir / "report.md"
    text = path.read_text()
    state = read_state(run_dir)
    lines = _gantt(text)
    assert lines[:5] == [
        "gantt",
        f"    title Run {state.run_id}",
        "    dateFormat x",
        "    axisFormat %H:%M:%S",
        "    todayMarker off",
    ]
    bars = [ln for ln in lines if re.match(r"    \S.* :(done|crit|active), b\d+, \d{13}, \d+ms$", ln)]
    for task in ("a", "b.x", "c", "check"):
        assert any(ln.startswith(f"    {task} :done, ") for ln in bars), task
    assert sum("merge :done" in ln for ln in bars) == 3
    sections = [ln for ln in lines if ln.startswith("    section ")]
    assert (
        sections[:2] == ["    section Wave 1 a", "    section Wave 1 b.x"]
        and sections[-1] == "    section Merges"
    )
    assert all(":" not in ln.split(" :", 1)[0] and "#" not in ln for ln in bars + sections)
    # estimates beside the measured makespan
    assert "| Serial | 7 | 1.00x |" in text and "| Theoretical (critical path) | 5 | 1.40x |" in text
    assert f"({state.makespan_s:.1f} s)" in text and "of the theoretical speedup" in text
    assert "- `a`: `extra.txt`" in text
    assert "| retry | `c` | overloaded, attempt 1" in text
    assert "| **Run total** |" in text and f"{state.usage['cost_usd']:.4f} |" in text
    assert text.startswith(f"# Run {state.run_id}: report: me #1")


def test_report_shows_failures_and_attempts(
    make_repo: Callable[..., Path], run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    run_dir = _run(
        make_repo, run_cli, tmp_path, {"faults": [{"task": "b.x", "call": 1, "error": "fatal", "once": True}]}
    )
    repo = run_dir.parents[2]
    assert run_cli("resume", "--repo", repo).exit_code == 0
    text = write_report(run_dir).read_text()
    lines = _gantt(text)
    assert any(ln.startswith("    b.x (failed) :crit, ") for ln in lines)
    assert any(ln.startswith("    b.x attempt 2 :done, ") for ln in lines)
    assert "| task_failed | `b.x` | model call failed" in text and "| group_failed | `b.x` |" in text
    assert "Tasks run more than once: `b.x` (2x)" in text


def _state() -> RunState:
    tasks = [TaskState(id="click me", state="running", started="2026-11-22T10:00:01.000Z")]
    return RunState(
        run_id="r1",
        repo="/r",
        base="0" * 40,
        branch="agentwaves/r1",
        state="running",
        settings=RunSettings(llm="fake"),
        waves=[WaveState(index=1, groups=[GroupState(name="gantt: #x; y", tasks=tasks)])],
    )


def test_interrupted_attempts_and_unsafe_names() -> None:
    state = _state()
    events = [
        {"ts": "2026-11-22T10:00:00.000Z", "type": "run_started"},
        {"ts": "2026-11-22T10:00:00.100Z", "type": "task_started", "task": "click me", "attempt": 1},
        {"ts": "2026-11-22T10:00:00.500Z", "type": "model_call", "task": "click me", "call": 1},
        {"ts": "2026-11-22T10:00:05.000Z", "type": "run_started"},
        {"ts": "2026-11-22T10:00:05.100Z", "type": "task_started", "task": "click me", "attempt": 2},
    ]
    bars = timeline(state, events)
    assert [(b.label, b.outcome, b.end - b.start) for b in bars] == [  # type: ignore[operator]
        ("click me", "interrupted", 400),
        ("click me attempt 2", "running", 0),
    ]
    lines = _gantt(report_markdown(state, events))
    assert "    section Wave 1 gantt x y" in lines
    assert "    · click me (interrupted) :crit, b0, 1795341600100, 400ms" in lines
    assert "    · click me attempt 2 :active, b1, 1795341605100, 1ms" in lines


def test_gantt_text_is_safe() -> None:
    assert gantt_text("a: b # c ; d %% e") == "a b c d e"
    for word in ("section x", "Click here", "gantt", "2026-01-01 x", "title t", "  "):
        assert gantt_text(word).startswith("· ")
    assert len(gantt_text("x" * 500)) <= 60


def test_report_without_events_uses_state_times(tmp_path: Path) -> None:
    state = _state()
    state.waves[0].groups[0].tasks[0].finished = "2026-11-22T10:00:03.000Z"
    state.waves[0].groups[0].tasks[0].state = "done"
    text = report_markdown(state, [])
    assert "    · click me :done, b0, 1795341601000, 2000ms" in _gantt(text)
    assert "## Tokens and cost" in text and "None." in text
