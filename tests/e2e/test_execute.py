"""End-to-end: plan files → execute → worktrees, agents (fake LLM), merges, one commit per wave."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    git,
    latest_state,
    shared_file_calls,
    tree_files,
    user_snapshot,
    wave_commits,
    write_yaml,
)
from tests.reliability.support import events

EXAMPLES = Path(__file__).parents[2] / "examples"


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_seed_example1_runs_web_and_mobile_concurrently(make_repo, run_cli) -> None:
    repo = make_repo({"README.md": "# app\n"})
    before = user_snapshot(repo)
    res = run_cli(
        "execute",
        "--waves",
        "--repo",
        repo,
        "--plan",
        EXAMPLES / "example1.pipeline",
        "--llm",
        "fake",
        "--fake-time-scale",
        "0.01",
    )
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    assert state["state"] == "done"
    tasks = {t["id"]: t for w in state["waves"] for g in w["groups"] for t in g["tasks"]}
    web = [tasks["5"], tasks["6"]]
    mobile = [tasks["7"], tasks["8"]]
    # web and mobile groups overlap in time
    assert max(_ts(t["started"]) for t in web + mobile) < min(_ts(t["finished"]) for t in web + mobile)
    commits = wave_commits(repo, state)
    assert len(commits) == len(state["waves"]) == 5
    subjects = [s for s, _ in commits]
    assert subjects[1] == "agentwaves: wave 2 complete (backend)"
    assert subjects[3] == "agentwaves: wave 4 complete (web-features mobile-features)"
    for i, (_, body) in enumerate(commits, start=1):
        assert f"Agentwaves-Run: {state['run_id']}" in body
        assert f"Agentwaves-Wave: {i}" in body
    assert user_snapshot(repo) == before
    assert all(t["attempts"] == 1 for t in tasks.values())


def test_waves_keep_earlier_files_and_each_groups_changes(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo({"README.md": "# app\n", "keep/old.txt": "old\n", "gone.txt": "bye\n"})
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "feature": "layers",
            "tasks": [
                {"id": "base", "title": "Base", "files": ["src/base.py"]},
                {"id": "left", "title": "Left", "files": ["src/left.py"], "depends_on": ["base"]},
                {
                    "id": "right",
                    "title": "Right",
                    "files": ["src/right.py", "gone.txt"],
                    "depends_on": ["base"],
                },
                {"id": "top", "title": "Top", "files": ["src/top.py"], "depends_on": ["left", "right"]},
            ],
        },
    )
    script = write_yaml(
        tmp_path / "script.yaml",
        {
            "tasks": {
                "right": [
                    {"tool": "write_file", "input": {"path": "src/right.py", "content": "RIGHT = 1\n"}},
                    {"tool": "run", "input": {"command": "rm gone.txt"}},
                    {"tool": "finish", "input": {"summary": "right done"}},
                ],
            }
        },
    )
    before = user_snapshot(repo)
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", script)
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    final = tree_files(repo, state["branch"])
    base_files = tree_files(repo, state["base"])
    # earlier files survive unless a group deleted them
    assert final["keep/old.txt"] == base_files["keep/old.txt"]
    assert final["README.md"] == base_files["README.md"]
    assert "gone.txt" not in final
    for f in ("src/base.py", "src/left.py", "src/right.py", "src/top.py"):
        assert f in final
    assert git(repo, "show", f"{state['branch']}:src/right.py") == "RIGHT = 1"
    # every wave's commit changes exactly what that wave's groups changed
    waves = state["waves"]
    assert [w["index"] for w in waves] == [1, 2, 3]
    changed_w2 = set(git(repo, "diff", "--name-only", f"{waves[1]['commit']}~1", waves[1]["commit"]).split())
    assert changed_w2 == {"src/left.py", "src/right.py", "gone.txt"}
    assert user_snapshot(repo) == before


@pytest.mark.parametrize("schedule", ["waves", "eager"])
def test_partial_wave_failure_then_resume(make_repo, run_cli, tmp_path, schedule: str) -> None:
    repo = make_repo()
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "tasks": [
                {"id": "a", "title": "A", "files": ["a.py"]},
                {"id": "b", "title": "B", "files": ["b.py"]},
                {"id": "c", "title": "C", "files": ["c.py"], "depends_on": ["a", "b"]},
            ]
        },
    )
    script = write_yaml(
        tmp_path / "s.yaml", {"faults": [{"task": "b", "call": 1, "error": "fatal", "once": True}]}
    )
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--schedule", schedule,
                  "--fake-script", script)  # fmt: skip
    assert res.exit_code == 1
    assert "b" in res.stderr and "resume" in res.stderr
    state = latest_state(repo)
    assert state["state"] == "failed"
    groups = {g["name"]: g for w in state["waves"] for g in w["groups"]}
    assert groups["a"]["state"] == "done"  # the other group of the wave finished and is kept
    assert groups["b"]["state"] == "failed"
    assert groups["c"]["state"] == "pending"
    assert state["waves"][0]["commit"] is None
    res = run_cli("resume", "--repo", repo)
    assert res.exit_code == 0, res.stderr
    state = latest_state(repo)
    tasks = {t["id"]: t for w in state["waves"] for g in w["groups"] for t in g["tasks"]}
    assert tasks["a"]["attempts"] == 1  # never run again
    assert tasks["b"]["attempts"] == 2
    assert len(wave_commits(repo, state)) == 2


@pytest.mark.parametrize("schedule", ["waves", "eager"])
def test_failing_gate_stops_the_run(make_repo, run_cli, tmp_path, schedule: str) -> None:
    repo = make_repo()
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "tasks": [
                {"id": "a", "title": "A", "files": ["a.py"]},
                {
                    "id": "check",
                    "title": "Check",
                    "kind": "gate",
                    "command": "echo boom-output; exit 3",
                    "depends_on": ["a"],
                },
                {"id": "b", "title": "B", "files": ["b.py"], "depends_on": ["check"]},
            ]
        },
    )
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--schedule", schedule)
    assert res.exit_code == 1
    state = latest_state(repo)
    tasks = {t["id"]: t for w in state["waves"] for g in w["groups"] for t in g["tasks"]}
    assert tasks["check"]["state"] == "failed"
    assert tasks["b"]["state"] == "pending"
    log = next((repo / ".agentwaves" / "runs").iterdir()) / "logs" / "check.log"
    assert "boom-output" in log.read_text()
    assert len(wave_commits(repo, state)) == 1


@pytest.mark.parametrize("resolvable", [True, False])
@pytest.mark.parametrize("schedule", ["waves", "eager"])
def test_undeclared_write_conflict(make_repo, run_cli, tmp_path, resolvable: bool, schedule: str) -> None:
    repo = make_repo({"shared.txt": "top\n"})
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "tasks": [
                {"id": "x", "title": "X", "files": ["x.py"]},
                {"id": "y", "title": "Y", "files": ["y.py"]},
            ]
        },
    )
    script: dict = {"tasks": shared_file_calls()}
    if not resolvable:
        script["resolver"] = "fail"
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--schedule", schedule,
                  "--fake-script", write_yaml(tmp_path / "s.yaml", script))  # fmt: skip
    state = latest_state(repo)
    tasks = {t["id"]: t for w in state["waves"] for g in w["groups"] for t in g["tasks"]}
    assert tasks["x"]["undeclared"] == ["shared.txt"]
    if resolvable:
        assert res.exit_code == 0, res.stderr
        text = git(repo, "show", f"{state['branch']}:shared.txt")
        assert "from x" in text and "from y" in text and "<<<<<<<" not in text
    else:
        assert res.exit_code == 1
        groups = {g["name"]: g for w in state["waves"] for g in w["groups"]}
        failed = [g for g in groups.values() if g["state"] == "failed"]
        assert len(failed) == 1 and failed[0]["conflicts"] == ["shared.txt"]
        assert "shared.txt" in res.stderr
        assert git(repo, "rev-parse", "--verify", f"refs/heads/{failed[0]['branch']}")
        assert state["waves"][0]["commit"] is None


def test_resume_of_a_done_run_is_a_no_op(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo()
    plan = write_yaml(tmp_path / "plan.yaml", {"tasks": [{"id": "a", "title": "A", "files": ["a.py"]}]})
    assert run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake").exit_code == 0
    head = git(repo, "rev-parse", latest_state(repo)["branch"])
    res = run_cli("resume", "--repo", repo)
    assert res.exit_code == 0
    assert "already done" in res.stderr
    assert git(repo, "rev-parse", latest_state(repo)["branch"]) == head


def test_second_process_is_refused_while_a_run_executes(make_repo, run_cli, tmp_path) -> None:
    from agentwaves.state.store import RepoLock

    repo = make_repo()
    plan = write_yaml(tmp_path / "plan.yaml", {"tasks": [{"id": "a", "title": "A", "files": ["a.py"]}]})
    (repo / ".agentwaves").mkdir()
    lock = RepoLock(repo / ".agentwaves")
    lock.acquire("other-run")
    try:
        res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake")
        assert res.exit_code == 1
        assert "another agentwaves process is executing" in res.stderr and "other-run" in res.stderr
        assert not (repo / ".agentwaves" / "runs").exists()
    finally:
        lock.release()
    assert run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake").exit_code == 0


def test_sequential_runs_one_group_at_a_time(make_repo, run_cli) -> None:
    repo = make_repo()
    res = run_cli(
        "execute",
        "--sequential",
        "--repo",
        repo,
        "--plan",
        EXAMPLES / "example1.pipeline",
        "--llm",
        "fake",
        "--fake-time-scale",
        "0.005",
    )
    assert res.exit_code == 0, res.stderr
    state = latest_state(repo)
    spans = []
    for w in state["waves"]:
        for g in w["groups"]:
            starts = [_ts(t["started"]) for t in g["tasks"]]
            ends = [_ts(t["finished"]) for t in g["tasks"]]
            spans.append((min(starts), max(ends), g["name"]))
    spans.sort()
    for (_, end, name), (start, _, other) in itertools.pairwise(spans):
        assert end <= start, f"groups {name} and {other} overlapped"
    assert len(wave_commits(repo, state)) == 5


def test_uncommitted_changes_are_left_out_and_reported(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo({"README.md": "# r\n"})
    (repo / "README.md").write_text("# r\nwork in progress\n")
    (repo / "notes.txt").write_text("mine\n")
    before = user_snapshot(repo)
    plan = write_yaml(tmp_path / "plan.yaml", {"tasks": [{"id": "a", "title": "A", "files": ["a.py"]}]})
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake")
    assert res.exit_code == 0, res.stderr
    assert "uncommitted changes" in res.stderr
    state = latest_state(repo)
    assert git(repo, "show", f"{state['branch']}:README.md") == "# r"
    assert "notes.txt" not in tree_files(repo, state["branch"])
    assert user_snapshot(repo) == before


@pytest.mark.parametrize("schedule", ["waves", "eager"])
def test_longest_chain_starts_first(make_repo, run_cli, tmp_path, schedule: str) -> None:
    repo = make_repo()
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "tasks": [
                {"id": "short", "title": "Short", "files": ["s.py"], "estimate": 1},
                {"id": "long", "title": "Long", "files": ["l.py"], "estimate": 2},
                {
                    "id": "after-long",
                    "title": "After long",
                    "files": ["al.py"],
                    "depends_on": ["long"],
                    "estimate": 9,
                },
            ]
        },
    )
    res = run_cli(
        "execute",
        "--repo",
        repo,
        "--plan",
        plan,
        "--llm",
        "fake",
        "--max-agents",
        "1",
        "--schedule",
        schedule,
    )
    assert res.exit_code == 0, res.stderr
    tasks = {t["id"]: t for w in latest_state(repo)["waves"] for g in w["groups"] for t in g["tasks"]}
    # long's slot is kept through its commit, for the task waiting on it: short starts after it is done
    assert _ts(tasks["long"]["finished"]) <= _ts(tasks["short"]["started"])
    if schedule == "eager":  # the chain continues before the short task: 2 + 9 ahead of 1
        # (after-long's commit may overlap short's start: no task waits on it, its slot goes on)
        order = [
            (e["type"], e["task"]) for e in events(repo) if e["type"] in ("agent_finished", "task_started")
        ]
        assert order.index(("agent_finished", "after-long")) < order.index(("task_started", "short")), order


def test_plan_with_merged_conflicting_groups_executes(make_repo, run_cli) -> None:
    """The article's plan: tasks 2, 3 and 4 conflict and become one group named '2+3+4'."""
    repo = make_repo()
    res = run_cli("execute", "--repo", repo, "--plan", EXAMPLES / "article.yaml", "--llm", "fake")
    assert res.exit_code == 0, res.stderr
    state = latest_state(repo)
    names = [g["name"] for w in state["waves"] for g in w["groups"]]
    assert "2+3+4" in names
    assert git(repo, "rev-parse", "--verify", f"refs/heads/agentwaves-groups/{state['run_id']}/2+3+4")
    assert len(wave_commits(repo, state)) == len(state["waves"])


@pytest.mark.parametrize("schedule", ["waves", "eager"])
def test_failing_setup_fails_the_run_cleanly_and_resumably(
    make_repo, run_cli, tmp_path, schedule: str
) -> None:
    repo = make_repo({"README.md": "# r\n", "agentwaves.yaml": "setup: test -e ok-to-start\n"})
    plan = write_yaml(tmp_path / "plan.yaml", {"tasks": [{"id": "a", "title": "A", "files": ["a.py"]}]})
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--schedule", schedule)
    assert res.exit_code == 1
    assert "Traceback" not in res.stderr
    group = latest_state(repo)["waves"][0]["groups"][0]
    assert group["state"] == "failed" and "could not prepare its worktree" in group["error"]
    (repo / "agentwaves.yaml").write_text("setup: 'true'\n")
    res = run_cli("resume", "--repo", repo)
    assert res.exit_code == 0, res.stderr


def test_prompt_cache_setting_reaches_the_agents(make_repo, run_cli, tmp_path) -> None:
    """``prompt_cache: false`` in agentwaves.yaml: no request asks for caching, so nothing is read from it."""
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {"feature": "f", "tasks": [{"id": "a", "title": "A", "files": ["a.py"]}]},
    )
    reads = {}
    for cache in (True, False):
        files = {"README.md": "# r\n", "agentwaves.yaml": f"prompt_cache: {str(cache).lower()}\n"}
        repo = make_repo(files, name=f"cache-{cache}")
        res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--sandbox", "none")
        assert res.exit_code == 0, res.stderr
        usage = latest_state(repo)["waves"][0]["groups"][0]["tasks"][0]["usage"]
        reads[cache] = usage["cache_read_input_tokens"]
    assert reads[True] > 0 and reads[False] == 0


def test_the_builtin_implementer_is_shown_the_repository_map(make_repo, run_cli, tmp_path) -> None:
    """The builtin's system prompt lists the repository (agents that read it themselves get no map, and the
    run does not list the repository for them)."""
    repo = make_repo({"README.md": "# app\n", "src/billing_ledger.py": "x = 1\n"})
    plan = write_yaml(
        tmp_path / "plan.yaml", {"feature": "f", "tasks": [{"id": "a", "title": "A", "files": ["a.py"]}]}
    )
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake")
    assert res.exit_code == 0, res.stderr + res.stdout
    log = repo / ".agentwaves" / "runs" / latest_state(repo)["run_id"] / "logs" / "a.log"
    system = [line for line in log.read_text().splitlines() if line.startswith('{"kind": "system"')]
    assert len(system) == 1 and "src/billing_ledger.py" in system[0]
