"""status, runs, review, report, logs, land and clean through the CLI, on real runs made with the fake LLM."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentwaves.state.store import RepoLock, read_state
from tests.e2e.helpers import git, latest_state, user_snapshot, write_yaml

PLAN = {
    "feature": "review me",
    "tasks": [
        {"id": "a", "title": "A", "files": ["a.py"]},
        {"id": "b", "title": "B", "files": ["b.py"]},
        {"id": "c", "title": "C", "files": ["c.py", "README.md"], "depends_on": ["a", "b"]},
    ],
}
SCRIPT = {
    "tasks": {
        "a": [
            {"tool": "write_file", "input": {"path": "a.py", "content": "A = 1\nB = 2\n"}},
            {"tool": "write_file", "input": {"path": "notes.txt", "content": "from a\n"}},
            {"tool": "finish", "input": {"summary": "a done", "notes": "A and B exist"}},
        ],
        "c": [
            {"tool": "write_file", "input": {"path": "c.py", "content": "C = 3\n"}},
            {"tool": "write_file", "input": {"path": "README.md", "content": "# demo v2\n"}},
            {"tool": "finish", "input": {"summary": "c done"}},
        ],
    }
}

Cli = Callable[..., Any]


def _execute(repo: Path, run_cli: Cli, tmp_path: Path, script: dict[str, Any], *args: str) -> Any:
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    fake = write_yaml(tmp_path / "script.yaml", script)
    return run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", fake, *args)


@pytest.fixture
def done_run(make_repo: Callable[..., Path], run_cli: Cli, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    repo = make_repo({"README.md": "# demo\n"})
    res = _execute(repo, run_cli, tmp_path, SCRIPT)
    assert res.exit_code == 0, res.stderr + res.stdout
    return repo, latest_state(repo)


@pytest.fixture
def failed_run(make_repo: Callable[..., Path], run_cli: Cli, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    repo = make_repo({"README.md": "# demo\n"})
    script = {**SCRIPT, "faults": [{"task": "b", "call": 1, "error": "fatal", "once": True}]}
    res = _execute(repo, run_cli, tmp_path, script)
    assert res.exit_code == 1
    return repo, latest_state(repo)


def _json(res: Any) -> Any:
    assert res.exit_code == 0, res.stderr + res.stdout
    return json.loads(res.stdout)


def _tasks(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for w in data["waves"] for g in w["groups"] for t in g["tasks"]}


# ------------------------------------------------------------------------------------------------ status


def test_plain_progress_lines_without_a_terminal(
    make_repo: Callable[..., Path], run_cli: Cli, tmp_path: Path
) -> None:
    res = _execute(make_repo(), run_cli, tmp_path, SCRIPT)
    lines = res.stdout.splitlines()
    assert any(
        ln[0] == "[" and ln[9:11] == "] " and "task a started (group a, attempt 1)" in ln for ln in lines
    )
    assert any("wave 2 committed" in ln for ln in lines)
    assert any("task a wrote undeclared files: notes.txt" in ln for ln in lines)


def test_status_json_after_a_done_run(done_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = done_run
    data = _json(run_cli("status", "--repo", repo, "--json"))
    rid = state["run_id"]
    assert data["run"] == rid and data["branch"] == f"agentwaves/{rid}" and data["state"] == "done"
    assert data["live"] is False and data["progress"] == {"done": 3, "total": 3, "percent": 100}
    assert [w["index"] for w in data["waves"]] == [1, 2]
    assert [w["commit"] for w in data["waves"]] == [w["commit"] for w in state["waves"]]
    assert [[g["name"] for g in w["groups"]] for w in data["waves"]] == [["a", "b"], ["c"]]
    for w in data["waves"]:
        assert w["state"] == "done" and w["done"] == w["total"]
        for g in w["groups"]:
            assert (g["state"], g["done"], g["total"], g["logs"]) == ("done", 1, 1, [])
    tasks = _tasks(data)
    recorded = {t["id"]: t for w in state["waves"] for g in w["groups"] for t in g["tasks"]}
    for tid, t in tasks.items():
        assert t["state"] == "done" and t["attempts"] == 1
        assert t["started"] == recorded[tid]["started"] and t["finished"] == recorded[tid]["finished"]
        assert t["usage"] == recorded[tid]["usage"] and t["usage"]["cost_usd"] > 0
        assert t["stuck_for_s"] is None
    assert tasks["a"]["undeclared"] == ["notes.txt"]
    usage = data["usage"]
    for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cost_usd", "cost_known"):
        assert usage[key] == state["usage"][key]
    assert usage["cost_known"] is True  # every task's model is priced
    # by id prefix, and the human view
    assert _json(run_cli("status", rid[:17], "--repo", repo, "--json"))["run"] == rid
    res = run_cli("status", "--repo", repo)
    assert res.exit_code == 0
    assert "Overall: 3/3 tasks complete (100%)" in res.stdout
    assert "(1/1 tasks complete)" in res.stdout and "Wave 2" in res.stdout
    assert f"cache read; cost ${usage['cost_usd']:.4f} (simulated" in res.stdout


def test_status_after_a_failed_run(failed_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = failed_run
    rid = state["run_id"]
    data = _json(run_cli("status", "--repo", repo, "--json"))
    assert data["state"] == "failed" and f"agentwaves resume {rid}" in data["hint"]
    groups = {g["name"]: g for w in data["waves"] for g in w["groups"]}
    assert groups["a"]["state"] == "done" and groups["b"]["state"] == "failed"
    assert groups["b"]["logs"] == [f".agentwaves/runs/{rid}/logs/b.log"]
    assert (repo / groups["b"]["logs"][0]).is_file()
    assert groups["c"]["state"] == "pending"
    tasks = _tasks(data)
    assert tasks["b"]["state"] == "failed" and "model call failed" in tasks["b"]["error"]
    assert tasks["c"]["elapsed_s"] is None and tasks["c"]["attempts"] == 0
    assert data["waves"][0]["commit"] is None and data["progress"]["percent"] == 33
    res = run_cli("status", "--repo", repo)
    assert f"log: .agentwaves/runs/{rid}/logs/b.log" in res.stdout
    assert "failed" in res.stdout and "Overall: 1/3 tasks complete (33%)" in res.stdout


def test_status_interrupted_running_and_stuck(done_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = done_run
    run_dir = repo / ".agentwaves" / "runs" / state["run_id"]
    raw = json.loads((run_dir / "state.json").read_text())
    raw["state"] = "running"
    task = raw["waves"][1]["groups"][0]["tasks"][0]
    task["state"], task["finished"], task["stuck_since"] = "running", None, "2020-01-01T00:00:00.000Z"
    (run_dir / "state.json").write_text(json.dumps(raw))
    data = _json(run_cli("status", "--repo", repo, "--json"))
    assert data["state"] == "interrupted" and data["recorded_state"] == "running"
    assert data["hint"] == f"interrupted (resume with `agentwaves resume {state['run_id']}`)"
    assert data["stuck"] == []  # nothing is stuck in a run nobody executes
    assert "interrupted" in run_cli("status", "--repo", repo).stdout
    lock = RepoLock(repo / ".agentwaves")
    lock.acquire(state["run_id"])
    try:
        data = _json(run_cli("status", "--repo", repo, "--json"))
        assert data["state"] == "running" and data["live"] is True and data["stuck"] == ["c"]
        assert _tasks(data)["c"]["stuck_for_s"] > 1000
        assert "stuck for" in run_cli("status", "--repo", repo).stdout
    finally:
        lock.release()


def test_status_without_runs_is_one_line_exit_2(make_repo: Callable[..., Path], run_cli: Cli) -> None:
    repo = make_repo()
    for cmd in ("status", "review", "report", "land", "clean"):
        res = run_cli(cmd, "--repo", repo)
        assert res.exit_code == 2, cmd
        assert res.stderr.strip().count("\n") == 0 and "no runs yet" in res.stderr
    res = run_cli("status", "nope", "--repo", repo)
    assert res.exit_code == 2


def test_runs_lists_every_run(done_run: tuple[Path, dict[str, Any]], run_cli: Cli, tmp_path: Path) -> None:
    repo, state = done_run
    assert _execute(repo, run_cli, tmp_path, SCRIPT).exit_code == 0
    data = _json(run_cli("runs", "--repo", repo, "--json"))
    assert state["run_id"] in [r["run"] for r in data["runs"]] and len(data["runs"]) == 2
    assert [r["created"] for r in data["runs"]] == sorted(r["created"] for r in data["runs"])
    assert all(r["state"] == "done" and r["branch"] == f"agentwaves/{r['run']}" for r in data["runs"])
    assert all(r["cost_known"] is True and r["cost_usd"] > 0 for r in data["runs"])
    assert data == _json(run_cli("status", "--all", "--repo", repo, "--json"))
    assert state["run_id"] in run_cli("runs", "--repo", repo).stdout


# ------------------------------------------------------------------------------------------------ review


def _numstat(repo: Path, commit: str) -> dict[str, tuple[int, int]]:
    out = git(repo, "diff", "--numstat", f"{commit}~1", commit)
    return {p: (int(a), int(r)) for a, r, p in (ln.split("\t") for ln in out.splitlines())}


def test_review_lists_each_wave(done_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = done_run
    data = _json(run_cli("review", "--repo", repo, "--json"))
    assert data["run"] == state["run_id"] and len(data["waves"]) == len(state["waves"]) == 2
    for wave, recorded in zip(data["waves"], state["waves"], strict=True):
        assert wave["commit"] == recorded["commit"]
        stat = _numstat(repo, wave["commit"])
        assert {f["path"]: (f["added"], f["removed"]) for f in wave["files"]} == stat
        assert wave["added"] == sum(a for a, _ in stat.values())
    w1, w2 = data["waves"]
    assert [g["name"] for g in w1["groups"]] == ["a", "b"] and [t["id"] for t in w1["tasks"]] == ["a", "b"]
    assert {f["path"] for f in w1["files"]} == {"a.py", "b.py", "notes.txt"}
    assert w1["undeclared"] == [{"task": "a", "files": ["notes.txt"]}]
    assert w2["undeclared"] == []
    assert {f["path"]: (f["status"], f["added"], f["removed"]) for f in w2["files"]} == {
        "c.py": ("A", 1, 0),
        "README.md": ("M", 1, 1),
    }
    assert "a done" in w1["handoff"] and "A and B exist" in w1["handoff"]
    cost = sum(t["usage"]["cost_usd"] for t in w1["tasks"])
    assert w1["usage"]["cost_usd"] == pytest.approx(cost) and cost > 0
    assert "patch" not in w1["tasks"][0]
    res = run_cli("review", "--repo", repo)
    assert res.exit_code == 0
    assert "undeclared writes by a: notes.txt" in res.stdout and w1["commit"][:10] in res.stdout
    assert "README.md" in res.stdout and f"3 files changed, +{w1['added']} -0" in res.stdout


def test_review_diff_per_task(done_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = done_run
    data = _json(run_cli("review", "--repo", repo, "--wave", "1", "--diff", "--json"))
    assert [w["index"] for w in data["waves"]] == [1]
    tasks = {t["id"]: t for t in data["waves"][0]["tasks"]}
    assert (
        tasks["a"]["group"] == "a"
        and tasks["a"]["commit"] == state["waves"][0]["groups"][0]["tasks"][0]["commit"]
    )
    assert "+++ b/a.py" in tasks["a"]["patch"] and "+B = 2" in tasks["a"]["patch"]
    assert "+++ b/notes.txt" in tasks["a"]["patch"] and "b.py" not in tasks["a"]["patch"]
    assert "+++ b/b.py" in tasks["b"]["patch"] and "a.py" not in tasks["b"]["patch"]
    assert {f["path"] for f in tasks["a"]["files"]} == {"a.py", "notes.txt"}
    res = run_cli("review", "--repo", repo, "--wave", "1", "--diff")
    assert res.exit_code == 0
    out = res.stdout
    assert "Group a" in out and "Group b" in out and "task a: A" in out
    assert "+B = 2" in out and out.index("task a: A") < out.index("+B = 2") < out.index("task b: B")


def test_review_unknown_wave(done_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = done_run
    res = run_cli("review", "--repo", repo, "--wave", "7", "--diff")
    assert res.exit_code == 2
    assert res.stderr == f"agentwaves: error: run {state['run_id']} has no wave 7 (it has waves 1-2)\n"


# ---------------------------------------------------------------------------------------------- report, logs


def test_report_command_regenerates(done_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = done_run
    res = run_cli("report", "--repo", repo)
    path = Path(res.stdout.strip())
    assert res.exit_code == 0 and path == repo / ".agentwaves" / "runs" / state["run_id"] / "report.md"
    assert "```mermaid\ngantt" in path.read_text()


def test_logs_prints_a_transcript(failed_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = failed_run
    rid = state["run_id"]
    res = run_cli("logs", rid, "a", "--repo", repo)
    assert res.exit_code == 0, res.stderr
    assert "attempt 1" in res.stdout and "# Your task: a: A" in res.stdout
    assert "→ write_file a.py" in res.stdout and "→ finish a done" in res.stdout
    assert '{"kind"' not in res.stdout
    res = run_cli("logs", rid[:8], "b", "--repo", repo)
    assert "ERROR" in res.stdout or "FAILED" in res.stdout
    records = [
        json.loads(ln) for ln in run_cli("logs", rid, "a", "--repo", repo, "--json").stdout.splitlines()
    ]
    assert records[0] == {"kind": "attempt", "data": 1}
    res = run_cli("logs", rid, "zz", "--repo", repo)
    assert res.exit_code == 2 and "has no task 'zz'" in res.stderr and res.stderr.count("\n") == 1
    assert run_cli("logs", rid, "a", "--repo", repo, "--follow").exit_code == 0  # finished: returns


def test_logs_follow_tails_until_the_task_finishes(
    done_run: tuple[Path, dict[str, Any]], run_cli: Cli
) -> None:
    repo, state = done_run
    run_dir = repo / ".agentwaves" / "runs" / state["run_id"]
    raw = json.loads((run_dir / "state.json").read_text())
    task = raw["waves"][1]["groups"][0]["tasks"][0]
    task["state"] = "running"
    (run_dir / "state.json").write_text(json.dumps(raw))
    lock = RepoLock(repo / ".agentwaves")
    lock.acquire(state["run_id"])

    def writer() -> None:
        time.sleep(0.3)
        with open(run_dir / "logs" / "c.log", "a") as fh:
            fh.write(json.dumps({"kind": "error", "data": "late line"}) + "\n")
        time.sleep(0.3)
        task["state"] = "done"
        (run_dir / "state.json").write_text(json.dumps(raw))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        res = run_cli("logs", state["run_id"], "c", "--repo", repo, "--follow")
    finally:
        thread.join()
        lock.release()
    assert res.exit_code == 0 and "ERROR: late line" in res.stdout


# ------------------------------------------------------------------------------------------------ land


def test_land_fast_forwards_when_safe(done_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = done_run
    head = git(repo, "rev-parse", state["branch"])
    res = run_cli("land", "--repo", repo)
    assert res.exit_code == 0, res.stderr
    assert "fast-forwarded" in res.stdout
    assert git(repo, "rev-parse", "main") == head and git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(repo, "status", "--porcelain") == "" and (repo / "c.py").read_text() == "C = 3\n"
    landed = json.loads((repo / ".agentwaves" / "runs" / state["run_id"] / "landed.json").read_text())
    assert landed["landed"] == head and landed["branch"] == "main" and landed["previous"] == state["base"]
    assert _json(run_cli("land", "--repo", repo, "--json"))["already"] is True
    assert _json(run_cli("status", "--repo", repo, "--json"))["landed"]["landed"] == head


def test_land_refuses_when_the_branch_moved(done_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = done_run
    (repo / "other.txt").write_text("mine\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-q", "-m", "meanwhile")
    before = user_snapshot(repo)
    res = run_cli("land", "--repo", repo)
    assert res.exit_code == 1
    base, now = state["base"][:7], before[1][:7]
    assert res.stderr.startswith(
        f"agentwaves: error: your branch main moved since the run started (base {base}, now {now}): "
    )
    assert f"git merge {state['branch']}" in res.stderr and "git rebase main" in res.stderr
    assert user_snapshot(repo) == before
    assert not (repo / ".agentwaves" / "runs" / state["run_id"] / "landed.json").exists()


def test_land_refuses_a_dirty_tree(done_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, _ = done_run
    (repo / "README.md").write_text("# local edit\n")
    before = user_snapshot(repo)
    res = run_cli("land", "--repo", repo)
    assert (
        res.exit_code == 1
        and "would overwrite files in your working tree: README.md (modified)" in res.stderr
    )
    assert user_snapshot(repo) == before and (repo / "README.md").read_text() == "# local edit\n"


def test_land_keeps_unrelated_untracked_files(done_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    """Issue 12 item 4: an untracked file the run does not touch (the README's agentwaves.yaml) no longer
    blocks `land`."""
    repo, state = done_run
    (repo / "agentwaves.yaml").write_text("max_agents: 2\n")
    res = run_cli("land", "--repo", repo)
    assert res.exit_code == 0, res.stderr
    assert git(repo, "rev-parse", "main") == git(repo, "rev-parse", state["branch"])
    assert (repo / "agentwaves.yaml").read_text() == "max_agents: 2\n"


def test_land_refuses_detached_failed_and_unknown(
    failed_run: tuple[Path, dict[str, Any]], run_cli: Cli
) -> None:
    repo, state = failed_run
    res = run_cli("land", "--repo", repo)
    assert (
        res.exit_code == 1
        and f"is failed, not done: resume it with `agentwaves resume {state['run_id']}`" in res.stderr
    )
    assert run_cli("land", "nope", "--repo", repo).exit_code == 2
    raw_path = repo / ".agentwaves" / "runs" / state["run_id"] / "state.json"
    raw = json.loads(raw_path.read_text())
    raw["state"] = "done"
    raw_path.write_text(json.dumps(raw))
    git(repo, "checkout", "-q", "--detach")
    before = user_snapshot_detached(repo)
    res = run_cli("land", "--repo", repo)
    assert res.exit_code == 1 and "HEAD is detached" in res.stderr
    assert user_snapshot_detached(repo) == before


def user_snapshot_detached(repo: Path) -> tuple[str, str, str]:
    return (git(repo, "rev-parse", "HEAD"), git(repo, "ls-files", "-s"), git(repo, "status", "--porcelain"))


# ------------------------------------------------------------------------------------------------ clean


def _branches(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").splitlines()


def test_clean_removes_worktrees_and_group_branches(
    done_run: tuple[Path, dict[str, Any]], run_cli: Cli
) -> None:
    repo, state = done_run
    rid = state["run_id"]
    leftover = repo / ".agentwaves" / "worktrees" / rid / "a"  # as a killed process would leave it
    git(repo, "worktree", "add", "-q", str(leftover), f"agentwaves-groups/{rid}/a")
    (leftover / "big.bin").write_bytes(b"x" * 50_000)
    assert len([b for b in _branches(repo) if b.startswith(f"agentwaves-groups/{rid}/")]) == 3
    res = run_cli("clean", "--repo", repo, "--json")
    data = _json(res)
    run = data["runs"][0]
    assert run["worktrees_removed"] == [f".agentwaves/worktrees/{rid}/a"]
    assert sorted(run["group_branches_deleted"]) == [f"agentwaves-groups/{rid}/{g}" for g in "abc"]
    assert run["integration"] == "kept-unlanded" and data["freed_bytes"] >= 50_000
    assert not leftover.exists() and str(leftover) not in git(repo, "worktree", "list")
    assert _branches(repo) == [state["branch"], "main"]
    res = run_cli("clean", "--repo", repo)
    assert "kept: not landed" in res.stdout and "Freed" in res.stdout
    assert run_cli("clean", "--force", "--repo", repo).exit_code == 0
    assert _branches(repo) == ["main"]


def test_clean_deletes_a_landed_integration_branch(
    done_run: tuple[Path, dict[str, Any]], run_cli: Cli
) -> None:
    repo, _ = done_run
    assert run_cli("land", "--repo", repo).exit_code == 0
    res = run_cli("clean", "--repo", repo)
    assert res.exit_code == 0 and "deleted (landed)" in res.stdout
    assert _branches(repo) == ["main"]


def test_clean_keeps_a_failed_runs_work(failed_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = failed_run
    rid = state["run_id"]
    assert (repo / ".agentwaves" / "worktrees" / rid / "_integration").is_dir()
    run = _json(run_cli("clean", "--repo", repo, "--json"))["runs"][0]
    assert run["worktrees_removed"] == [f".agentwaves/worktrees/{rid}/_integration"]
    assert run["group_branches_deleted"] == [] and len(run["group_branches_kept"]) == 2
    assert not (repo / ".agentwaves" / "worktrees" / rid).exists()
    res = run_cli("resume", "--repo", repo)  # still resumable after cleaning
    assert res.exit_code == 0, res.stderr
    assert read_state(repo / ".agentwaves" / "runs" / rid).state == "done"


def test_clean_refuses_while_a_run_executes(done_run: tuple[Path, dict[str, Any]], run_cli: Cli) -> None:
    repo, state = done_run
    before = _branches(repo)
    lock = RepoLock(repo / ".agentwaves")
    lock.acquire(state["run_id"])
    try:
        for args in ((), ("--all",), ("--all", "--force")):
            res = run_cli("clean", *args, "--repo", repo)
            assert res.exit_code == 1
            assert res.stderr.startswith("agentwaves: error: a run is executing in this repository (pid ")
            assert res.stderr.count("\n") == 1
    finally:
        lock.release()
    assert _branches(repo) == before


def test_clean_all(done_run: tuple[Path, dict[str, Any]], run_cli: Cli, tmp_path: Path) -> None:
    repo, _ = done_run
    assert _execute(repo, run_cli, tmp_path, SCRIPT).exit_code == 0
    data = _json(run_cli("clean", "--all", "--force", "--repo", repo, "--json"))
    assert len(data["runs"]) == 2 and all(r["integration"] == "deleted-forced" for r in data["runs"])
    assert _branches(repo) == ["main"]
    assert run_cli("clean", "x", "--all", "--repo", repo).exit_code == 2
    assert subprocess.run(["git", "worktree", "prune"], cwd=repo).returncode == 0
