"""`agentwaves plan` through the CLI with the fake LLM, on a copy of the sandbox project."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from agentwaves.demo import prepare_repo
from agentwaves.plan import analyze
from agentwaves.plan.load import load_plan

GOOD = {
    "feature": "f",
    "tasks": [
        {"id": "a", "title": "A", "files": ["a.py"]},
        {"id": "b", "title": "B", "files": ["b.py"]},
        {"id": "c", "title": "C", "files": ["c.py"], "depends_on": ["a", "b"]},
    ],
}
CYCLE = {
    "feature": "f",
    "tasks": [
        {"id": "a", "title": "A", "depends_on": ["b"]},
        {"id": "b", "title": "B", "depends_on": ["a"]},
    ],
}


def _status(repo: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _script(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "script.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_plan_on_sandbox_writes_a_parallel_plan(tmp_path, run_cli) -> None:
    repo = prepare_repo(tmp_path / "notify")
    res = run_cli("plan", "add email and SMS notifications", "--repo", repo, "--llm", "fake")
    assert res.exit_code == 0, res.stderr
    plan = load_plan(repo / ".agentwaves" / "plan.yaml")
    analysis = analyze(plan)
    assert any(len(w.groups) >= 2 for w in analysis.waves), "the plan has no parallel work"
    assert any(t.kind == "gate" for t in plan.tasks)  # the sandbox's gate_command
    assert "```mermaid" in (repo / ".agentwaves" / "parallelization-analysis.md").read_text()
    assert "Wave" in res.stdout and "agentwaves execute" in res.stdout
    assert _status(repo) == ""  # .agentwaves/ is no noise in git status


def test_plan_json_output(tmp_path, run_cli) -> None:
    repo = prepare_repo(tmp_path / "notify")
    res = run_cli("plan", "add email and SMS notifications", "--repo", repo, "--llm", "fake", "--json")
    assert res.exit_code == 0, res.stderr
    import json

    data = json.loads(res.stdout)
    assert {"waves", "critical_path", "estimates", "serialization_points", "warnings", "plan"} <= data.keys()


def test_invalid_plan_goes_back_to_the_model(tmp_path, run_cli) -> None:
    repo = prepare_repo(tmp_path / "notify")
    script = _script(tmp_path, {"plans": [CYCLE, GOOD]})
    res = run_cli("plan", "f", "--repo", repo, "--llm", "fake", "--fake-script", script)
    assert res.exit_code == 0, res.stderr
    assert [t.id for t in load_plan(repo / ".agentwaves" / "plan.yaml").tasks][:3] == ["a", "b", "c"]
    log = (repo / ".agentwaves" / "logs" / "planner.log").read_text()
    assert "invalid plan" in log and "cycle" in log


def test_planner_gives_up_after_three_invalid_plans(tmp_path, run_cli) -> None:
    repo = prepare_repo(tmp_path / "notify")
    script = _script(tmp_path, {"plans": [CYCLE]})
    res = run_cli("plan", "f", "--repo", repo, "--llm", "fake", "--fake-script", script)
    assert res.exit_code == 1
    assert res.stderr.count("\n") == 1 and "invalid plan 3 times" in res.stderr and "cycle" in res.stderr
    assert not (repo / ".agentwaves" / "plan.yaml").exists()


def test_missing_api_key_is_one_line_before_any_work(tmp_path, run_cli) -> None:
    repo = prepare_repo(tmp_path / "notify")
    res = run_cli("plan", "f", "--repo", repo, "--llm", "anthropic")
    assert res.exit_code == 2  # bad input, as the README promises
    assert res.stderr.startswith("agentwaves: error: ANTHROPIC_API_KEY is not set")
    assert res.stderr.count("\n") == 1
    assert not (repo / ".agentwaves" / "plan.yaml").exists()


def test_record_then_replay_gives_the_same_plan(tmp_path, run_cli) -> None:
    repo = prepare_repo(tmp_path / "notify")
    rec = tmp_path / "session.jsonl"
    assert (
        run_cli(
            "plan", "add email and SMS notifications", "--repo", repo, "--llm", "fake", "--record", rec
        ).exit_code
        == 0
    )
    first = (repo / ".agentwaves" / "plan.yaml").read_text()
    (repo / ".agentwaves" / "plan.yaml").unlink()
    res = run_cli(
        "plan", "add email and SMS notifications", "--repo", repo, "--llm", "fake", "--fake-script", rec
    )
    assert res.exit_code == 0, res.stderr
    assert (repo / ".agentwaves" / "plan.yaml").read_text() == first


def test_bad_inputs(tmp_path, run_cli) -> None:
    repo = prepare_repo(tmp_path / "notify")
    res = run_cli("plan", "  ", "--repo", repo, "--llm", "fake")
    assert res.exit_code == 2 and "feature text is empty" in res.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    res = run_cli("plan", "x", "--repo", plain, "--llm", "fake")
    assert res.exit_code == 2 and "not a git repository" in res.stderr
    res = run_cli("plan", "x", "--repo", repo, "--llm", "nope")
    assert res.exit_code == 2 and "unknown LLM backend" in res.stderr
