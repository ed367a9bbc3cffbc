"""End-to-end: live write leases. Two groups run at once; one's agent writes a file the other's task
predicts. The write is refused (live, at the tool; or at the task's end, for agents without a write hook),
the owner's content lands, and no resolver runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.helpers import git, latest_state, write_yaml

OWNER_TEXT = "owner = 1\n"
INTRUDER_TEXT = "intruder = 1\n"


def _plan_and_script(tmp_path: Path) -> tuple[Path, Path]:
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "feature": "leases",
            "tasks": [
                # slow: still running (and leasing shared.py) when the intruder writes
                {"id": "owner", "title": "Owner", "files": ["src/shared.py"], "estimate": 20},
                {"id": "intruder", "title": "Intruder", "files": ["src/intruder.py"], "estimate": 1},
            ],
        },
    )
    script = {
        "tasks": {
            "owner": [
                {"tool": "write_file", "input": {"path": "src/shared.py", "content": OWNER_TEXT}},
                {"tool": "finish", "input": {"summary": "owner done"}},
            ],
            "intruder": [
                {"tool": "write_file", "input": {"path": "src/intruder.py", "content": "x = 1\n"}},
                {"tool": "write_file", "input": {"path": "src/shared.py", "content": INTRUDER_TEXT}},
                # undeclared, and nobody leases it: allowed, and reported as before
                {"tool": "write_file", "input": {"path": "src/notes.txt", "content": "notes\n"}},
                {"tool": "finish", "input": {"summary": "intruder done"}},
            ],
        }
    }
    return plan, write_yaml(tmp_path / "script.yaml", script)


def _events(repo: Path) -> list[dict[str, Any]]:
    run_dir = sorted((repo / ".agentwaves" / "runs").iterdir())[-1]
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _run(run_cli, repo: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    plan, script = _plan_and_script(tmp_path)
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", script,
                  "--fake-time-scale", "0.05", "--max-agents", "2", "--sandbox", "none")  # fmt: skip
    assert res.exit_code == 0, res.stderr + res.stdout
    return res, latest_state(repo), _events(repo)


def _log(state: dict[str, Any], task: str) -> str:
    run_dir = Path(state["repo"]) / ".agentwaves" / "runs" / state["run_id"]
    return (run_dir / "logs" / f"{task}.log").read_text()


def _owner_group(state: dict[str, Any]) -> str:
    groups = [g for w in state["waves"] for g in w["groups"]]
    return next(g["name"] for g in groups for t in g["tasks"] if t["id"] == "owner")


def _assert_owner_landed_without_resolver(repo: Path, state: dict[str, Any], events: list[dict]) -> None:
    assert len(state["waves"]) == 1 and len(state["waves"][0]["groups"]) == 2  # two concurrent groups
    assert git(repo, "show", f"{state['branch']}:src/shared.py") + "\n" == OWNER_TEXT
    assert git(repo, "show", f"{state['branch']}:src/intruder.py") == "x = 1"
    kinds = {e["type"] for e in events}
    assert not kinds & {"merge_conflict", "resolved", "resolve_failed"}  # no resolver run
    assert not any(e.get("agent") == "resolver" for e in events if e["type"] == "model_call")
    tasks = {t["id"]: t for w in state["waves"] for g in w["groups"] for t in g["tasks"]}
    assert tasks["intruder"]["refused"] == ["src/shared.py"]
    assert "src/shared.py" not in tasks["intruder"]["files_written"]
    assert tasks["intruder"]["undeclared"] == ["src/notes.txt"]
    assert git(repo, "show", f"{state['branch']}:src/notes.txt") == "notes"
    assert [e["files"] for e in events if e["type"] == "undeclared_writes"] == [["src/notes.txt"]]
    report = (Path(state["repo"]) / ".agentwaves" / "runs" / state["run_id"] / "report.md").read_text()
    row = (
        "| `intruder` | `src/intruder.py` | `src/intruder.py`, `src/notes.txt` | `src/notes.txt` | - | "
        "`src/shared.py` |"
    )
    assert row in report
    # intruder's commit on its group branch does not touch the shared file
    intruder_commit = tasks["intruder"]["commit"]
    assert "src/shared.py" not in git(repo, "show", "--name-only", "--format=", intruder_commit).split()


def test_live_lease_refuses_the_intruders_write(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo({"README.md": "# app\n", "src/__init__.py": ""})
    res, state, events = _run(run_cli, repo, tmp_path)
    refusals = [e for e in events if e["type"] == "write_refused"]
    owner_group = _owner_group(state)
    review = json.loads(run_cli("review", "--repo", repo, "--json").stdout)
    assert review["waves"][0]["refused"] == [{"task": "intruder", "files": ["src/shared.py"]}]
    assert (
        "writes by intruder refused (leased elsewhere): src/shared.py"
        in run_cli("review", "--repo", repo).stdout
    )
    expected = {"task": "intruder", "path": "src/shared.py", "owner": "owner", "owner_group": owner_group}
    assert refusals == [{**refusals[0], **expected, "at": "write"}]
    assert not [e for e in events if e["type"] == "task_sent_back"]
    # the agent saw the tool error naming path, owner task and group
    log = _log(state, "intruder")
    assert (
        f"src/shared.py is being written by task owner in group {owner_group}; record what you need in "
        "your handoff, or finish and let a later task do it"
    ) in log
    assert "write to src/shared.py REFUSED (leased by task owner" in res.stdout  # plain progress line
    _assert_owner_landed_without_resolver(repo, state, events)


def test_end_of_task_fallback_sends_the_intruder_back_once(make_repo, run_cli, tmp_path) -> None:
    """Live checks off (as for an agent without a write hook): the write is caught at the task's end."""
    files = {"README.md": "# app\n", "src/__init__.py": "", "agentwaves.yaml": "live_leases: false\n"}
    repo = make_repo(files)
    _, state, events = _run(run_cli, repo, tmp_path)
    refusals = [e for e in events if e["type"] == "write_refused"]
    assert [(e["task"], e["path"], e["owner"], e["at"]) for e in refusals] == [
        ("intruder", "src/shared.py", "owner", "end"),  # first pass: undone, sent back
        ("intruder", "src/shared.py", "owner", "end"),  # the scripted agent writes it again: undone, dropped
    ]
    sent_back = [e for e in events if e["type"] == "task_sent_back"]
    assert [(e["task"], e["paths"]) for e in sent_back] == [("intruder", ["src/shared.py"])]
    log = _log(state, "intruder")
    assert "Sent back: writes refused" in log and "is being written by task owner in group" in log
    _assert_owner_landed_without_resolver(repo, state, events)


def test_a_command_writing_a_leased_file_is_caught_at_the_tasks_end(make_repo, run_cli, tmp_path) -> None:
    """Live checks on, but a `run` command bypasses the file tools: the end-of-task check (git) sees it."""
    repo = make_repo({"README.md": "# app\n", "src/__init__.py": ""})
    plan, _ = _plan_and_script(tmp_path)
    script = yaml.safe_load(_plan_and_script(tmp_path)[1].read_text())
    script["tasks"]["intruder"][1] = {"tool": "run", "input": {"command": "echo intruder > src/shared.py"}}
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--sandbox", "none",
                  "--fake-script", write_yaml(tmp_path / "run.yaml", script), "--fake-time-scale", "0.05",
                  "--max-agents", "2")  # fmt: skip
    assert res.exit_code == 0, res.stderr + res.stdout
    state, events = latest_state(repo), _events(repo)
    refusals = [(e["task"], e["path"], e["owner"], e["at"]) for e in events if e["type"] == "write_refused"]
    assert refusals == [("intruder", "src/shared.py", "owner", "end")] * 2
    assert [e["task"] for e in events if e["type"] == "task_sent_back"] == ["intruder"]
    _assert_owner_landed_without_resolver(repo, state, events)


def test_a_done_tasks_files_are_free_for_later_tasks(make_repo, run_cli, tmp_path) -> None:
    """Leases end with the task: a later wave may write a finished task's file (undeclared) unrefused."""
    repo = make_repo({"README.md": "# app\n", "src/__init__.py": ""})
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "tasks": [
                {"id": "a", "title": "A", "files": ["src/a.py"]},
                {"id": "b", "title": "B", "files": ["src/b.py"], "depends_on": ["a"]},
                {"id": "c", "title": "C", "files": ["src/c.py"], "depends_on": ["a"], "estimate": 10},
            ]
        },
    )
    calls = [
        {"tool": "write_file", "input": {"path": "src/b.py", "content": "b = 1\n"}},
        {"tool": "write_file", "input": {"path": "src/a.py", "content": "a = 2\n"}},
        {"tool": "finish", "input": {"summary": "b done"}},
    ]
    for schedule in ("waves", "eager"):
        res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--schedule", schedule,
                      "--fake-script", write_yaml(tmp_path / "s.yaml", {"tasks": {"b": calls}}),
                      "--fake-time-scale", "0.02")  # fmt: skip
        assert res.exit_code == 0, res.stderr
        state, events = latest_state(repo), _events(repo)
        assert not [e for e in events if e["type"] in ("write_refused", "task_sent_back")]
        assert git(repo, "show", f"{state['branch']}:src/a.py") == "a = 2"
