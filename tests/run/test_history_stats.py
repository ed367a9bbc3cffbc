"""Stats, calibration and lessons on hand-made history records (the CLI tests use real runs)."""

from __future__ import annotations

from pathlib import Path

from agentwaves.plan.model import Plan, Task
from agentwaves.state.history import read_history, task_kind
from agentwaves.state.stats import MAX_LESSONS_CHARS, calibrate, history_stats, lessons


def _rec(task: str, kind: str, estimate: float, measured: float, **extra: object) -> dict[str, object]:
    base = {"run": "r1", "task": task, "kind": kind, "state": "done", "estimate": estimate,
            "measured_minutes": measured, "predicted": [], "actual": []}  # fmt: skip
    return {**base, **extra}


def test_calibration_per_kind_then_overall_then_unchanged() -> None:
    records = [_rec(f"c{i}", "code:src/cli", 2, 6) for i in range(3)]  # cli tasks: 3x
    records += [_rec("d1", "docs", 2, 2), _rec("d2", "docs", 2, 2)]  # docs: too few for their own
    plan = Plan(
        tasks=[
            Task(id="cli", title="CLI", files=["src/cli/app.py"], estimate=10),
            Task(id="doc", title="Docs", files=["README.md"], estimate=10),
            Task(id="gate", title="Gate", kind="gate", command="true", depends_on=["cli", "doc"]),
        ]
    )
    scaled, info = calibrate(plan, records)
    assert scaled.task("cli").estimate == 30 and info["scaled"]["cli"] == [10, 30, "code:src/cli"]
    assert scaled.task("doc").estimate == 30 and info["scaled"]["doc"][2] == "overall"  # median of 5
    assert "gate" not in info["scaled"]
    unchanged, info = calibrate(plan, records[:2])
    assert unchanged.task("cli").estimate == 10 and info["scaled"] == {} and info["overall"] is None


def test_stats_survive_odd_records_and_lessons_stay_short() -> None:
    odd = [
        _rec("a", 5, "x", None, predicted="src/a.py", actual=[1, "src/a.py"]),  # wrong types
        {"task": "b", "state": "done"},
        _rec("c", "code:src", 2, 4, predicted=["src/**/*.py"], actual=["src/x/y.py", "docs/z.md"]),
    ]
    data = history_stats(odd)
    assert data["records"] == 3 and data["prediction"]["recall"] == 0.5
    assert data["prediction"]["precision"] == 1.0 and data["duration"]["tasks"] == 1
    many = [
        _rec(
            f"t{i}", f"code:src/m{i}", 1, 1, predicted=[f"src/m{i}/a.py"], actual=[f"tests/{'x' * 300}{i}.py"]
        )
        for i in range(50)
    ]
    text = lessons(many)
    assert text.startswith("# What past runs") and len(text) < MAX_LESSONS_CHARS + 100
    assert text.count("\n") <= 9


def test_corrupt_lines_are_skipped_with_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"task": "a", "state": "done"}\nnot json\n[1]\n\n{"task": "b"}\n')
    warnings: list[str] = []
    assert [r["task"] for r in read_history(path, warn=warnings.append)] == ["a", "b"]
    assert warnings == [f"{path}: skipped 2 corrupt lines (2, 3)"]


def test_task_kinds() -> None:
    def kind(files: list[str]) -> str:
        return task_kind(Task(id="t", title="T", files=files))

    assert kind(["src/app/cli/main.py", "tests/test_cli.py"]) == "code:src/app"
    assert kind(["README.md", "docs/x.md"]) == "docs"
    assert kind(["tests/test_a.py"]) == "tests"
    assert kind(["setup.py"]) == "code:." and kind([]) == "other"
