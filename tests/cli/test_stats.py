"""History and what is learnt from it: two real runs (fake backend), then `stats --json`, `analyze
--calibrate` and the planner's prompt."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.helpers import write_yaml

SCALE = "0.01"  # seconds per plan minute: the runs' fixed costs make tasks take longer than estimated


def _plan(tmp_path: Path) -> Path:
    return write_yaml(
        tmp_path / "plan.yaml",
        {
            "feature": "history",
            "tasks": [
                {"id": "a", "title": "A", "files": ["src/a.py"], "estimate": 2},
                {"id": "b", "title": "B", "files": ["src/b.py", "src/unused.py"], "estimate": 2},
                {"id": "c", "title": "C", "files": ["src/c.py"], "estimate": 2, "depends_on": ["a"]},
            ],
        },
    )


def _script(tmp_path: Path) -> Path:
    calls = [
        {"tool": "write_file", "input": {"path": "src/b.py", "content": "b = 1\n"}},
        {"tool": "write_file", "input": {"path": "tests/test_b.py", "content": "def test(): pass\n"}},
        {"tool": "finish", "input": {"summary": "b and its test"}},
    ]
    return write_yaml(tmp_path / "script.yaml", {"tasks": {"b": calls}})


def _two_runs(run_cli, repo: Path, tmp_path: Path) -> list[dict]:  # type: ignore[no-untyped-def]
    summaries = []
    for _ in range(2):
        res = run_cli("execute", "--repo", repo, "--plan", _plan(tmp_path), "--llm", "fake", "--json",
                      "--fake-script", _script(tmp_path), "--fake-time-scale", SCALE)  # fmt: skip
        assert res.exit_code == 0, res.stderr
        summaries.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return summaries


def test_history_after_two_runs_then_stats_json(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo({"README.md": "# r\n", "src/__init__.py": ""})
    _two_runs(run_cli, repo, tmp_path)
    lines = (repo / ".agentwaves" / "history.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 6 and len({r["run"] for r in records}) == 2
    b = next(r for r in records if r["task"] == "b")
    assert b["predicted"] == ["src/b.py", "src/unused.py"] and b["actual"] == ["src/b.py", "tests/test_b.py"]
    assert b["estimate"] == 2 and b["measured_minutes"] > 0 and b["tokens"] > 0 and b["cost_usd"] > 0
    assert b["feature"] == "history" and b["kind"] == "code:src" and b["model"].startswith("fake/")

    # the run report compares predicted and actual files per task
    report = (sorted((repo / ".agentwaves" / "runs").iterdir())[-1] / "report.md").read_text()
    section = report.split("## Predicted and actual files", 1)[1].split("\n## ", 1)[0]
    assert "| `b` | `src/b.py`, `src/unused.py` | `src/b.py`, `tests/test_b.py` | `tests/test_b.py` | " \
        "`src/unused.py` | - |" in section  # fmt: skip
    assert "| `a` | `src/a.py` | `src/a.py` | - | - | - |" in section
    assert "Prediction precision 75%, recall 75% (3 tasks)." in section

    res = run_cli("stats", "--repo", repo, "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert (data["records"], data["runs"], data["tasks_done"]) == (6, 2, 6)
    # per run: a and c wrote their one predicted file; b wrote 2 files, 1 predicted, and left 1 entry unused
    assert data["prediction"]["recall"] == round(6 / 8, 4)
    assert data["prediction"]["precision"] == round(6 / 8, 4)
    assert data["prediction"]["by_planner_model"]["unknown"]["tasks"] == 6  # a hand-written plan
    assert data["duration"]["tasks"] == 6 and data["duration"]["ratio_median"] > 0
    assert data["duration"]["ratio_p25"] <= data["duration"]["ratio_median"] <= data["duration"]["ratio_p75"]
    assert data["cost"]["usd_per_estimated_minute"] > 0 and data["cost"]["estimated_minutes"] == 12
    assert data["misses"][0]["task"] == "b"
    assert data["misses"][0]["unpredicted"] == ["tests/test_b.py"]
    assert data["misses"][0]["unused"] == ["src/unused.py"]

    text = run_cli("stats", "--repo", repo)
    assert "recall 75 %" in text.stdout and "tests/test_b.py" in text.stdout

    with (repo / ".agentwaves" / "history.jsonl").open("a") as fh:
        fh.write('{"torn": \n')
    res = run_cli("stats", "--repo", repo, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["records"] == 6
    assert res.stderr.count("\n") == 1 and "history.jsonl: skipped 1 corrupt line (7)" in res.stderr


def test_calibrate_moves_the_practical_estimate_toward_measured_time(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo({"README.md": "# r\n", "src/__init__.py": ""})
    summaries = _two_runs(run_cli, repo, tmp_path)
    measured = sum(s["makespan_plan_minutes"] for s in summaries) / 2
    raw = json.loads(run_cli("analyze", _plan(tmp_path), "--json").stdout)
    res = run_cli("analyze", _plan(tmp_path), "--json", "--calibrate", "--repo", repo)
    assert res.exit_code == 0, res.stderr
    calibrated = json.loads(res.stdout)
    before, after = raw["estimates"]["practical"], calibrated["estimates"]["practical"]
    assert before == 4  # a then c, 2 minutes each
    assert measured > before  # the fixed costs of a run: slower than estimated
    assert abs(after - measured) < abs(before - measured)
    info = calibrated["calibration"]
    assert info["tasks"] == 6 and info["by_kind"]["code:src"] > 1
    assert info["scaled"]["a"][0] == 2 and info["scaled"]["a"][2] == "code:src"
    text = run_cli("analyze", _plan(tmp_path), "--calibrate", "--repo", repo).stdout
    assert "Estimates calibrated from 6 measured tasks" in text


def test_planner_prompt_gets_the_past_misses(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo({"README.md": "# r\n", "src/__init__.py": ""})
    _two_runs(run_cli, repo, tmp_path)
    res = run_cli("plan", "add csv export", "--repo", repo, "--llm", "fake", "--json")
    assert res.exit_code == 0, res.stderr
    log = (repo / ".agentwaves" / "logs" / "planner.log").read_text()
    assert "What past runs of this repository got wrong" in log
    assert "also wrote tests/test_b.py (2 of 6 times)" in log
    assert json.loads(res.stdout)["calibration"]["tasks"] == 6
    assert (repo / ".agentwaves" / "plan.yaml").read_text().startswith("# agentwaves planner model: fake/")
