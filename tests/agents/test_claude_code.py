"""The claude-code backend end to end: the real pinned `claude` against a scripted Messages API stub."""

from __future__ import annotations

import json
from pathlib import Path

from agentwaves.state.events import read_events
from tests.agents.claude_support import bash, done, writes
from tests.e2e.helpers import git, latest_state, wave_commits, write_yaml


def three_waves(tmp_path: Path) -> Path:
    tasks = [
        {"id": "a", "title": "A", "files": ["a.txt"]},
        {"id": "b", "title": "B", "files": ["b.txt"], "depends_on": ["a"]},
        {"id": "c", "title": "C", "files": ["c.txt"], "depends_on": ["b"]},
    ]
    return write_yaml(tmp_path / "plan.yaml", {"feature": "letters", "tasks": tasks})


def test_three_waves_one_commit_each_with_usage_and_cost(make_repo, run_cli, claude_stub, tmp_path) -> None:
    repo = make_repo({"agentwaves.yaml": "agent_args: [--effort, low]\n"})
    claude_stub.script = {
        "a": [writes("a.txt", "A\n"), *done("wrote a.txt", "a is first")],
        "b": [writes("b.txt", "B\n"), *done("wrote b.txt")],
        "c": [bash("printf 'C\\n' > c.txt"), *done("wrote c.txt")],
    }
    plan = three_waves(tmp_path)
    res = run_cli(
        "execute", "--agent", "claude-code", "--model", "claude-haiku-5-5", "--repo", repo, "--plan", plan
    )
    assert res.exit_code == 0, res.stderr + res.stdout
    # the model and agent_args pass on to claude
    assert {r["model"] for r in claude_stub.main_requests()} == {"claude-haiku-5-5"}
    assert {r["output_config"]["effort"] for r in claude_stub.main_requests()} == {"low"}
    state = latest_state(repo)
    assert state["state"] == "done"
    commits = wave_commits(repo, state)
    assert [s for s, _ in commits] == [f"agentwaves: wave {i} complete ({g})" for i, g in enumerate("abc", 1)]
    for name in "abc":
        assert git(repo, "show", f"{state['branch']}:{name}.txt") == name.upper()
    # b's prompt carried a's handoff
    b_prompt = json.dumps(claude_stub.main_requests("b")[0]["messages"][0])
    assert "a is first" in b_prompt
    status = json.loads(run_cli("status", "--json", "--repo", repo).stdout)
    assert status["usage"]["cost_usd"] > 0 and status["usage"]["input_tokens"] > 0
    tasks = {t["id"]: t for w in state["waves"] for g in w["groups"] for t in g["tasks"]}
    assert tasks["a"]["files_written"] == ["a.txt"] and tasks["c"]["files_written"] == ["c.txt"]
    assert tasks["a"]["handoff"]["summary"] == "wrote a.txt"
    events = [
        json.loads(line)
        for line in (repo / ".agentwaves" / "runs" / state["run_id"] / "events.jsonl")
        .read_text()
        .splitlines()
    ]
    tools = [(e["task"], e["tool"]) for e in events if e["type"] == "tool"]
    assert ("a", "Write") in tools and ("c", "Bash") in tools


def test_a_merge_conflict_is_resolved_by_claude_code(make_repo, run_cli, claude_stub, tmp_path) -> None:
    repo = make_repo()
    tasks = [{"id": t, "title": t.upper(), "files": [f"{t}.txt"]} for t in "xy"]
    p = write_yaml(tmp_path / "plan.yaml", {"feature": "both", "tasks": tasks})
    # both write shared.txt too (undeclared): their groups' merge conflicts
    claude_stub.script = {
        t: [writes(f"{t}.txt", t), writes("shared.txt", f"top\nfrom {t}\n"), *done(f"{t} done")] for t in "xy"
    }
    claude_stub.script["resolver"] = [writes("shared.txt", "top\nfrom x\nfrom y\n"), *done("kept both")]
    res = run_cli("execute", "--agent", "claude-code", "--repo", repo, "--plan", p)
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    assert git(repo, "show", f"{state['branch']}:shared.txt") == "top\nfrom x\nfrom y"
    evs = read_events(repo / ".agentwaves" / "runs" / state["run_id"] / "events.jsonl")
    resolved = [e for e in evs if e["type"] == "resolved"]
    assert len(resolved) == 1 and resolved[0]["summary"] == "kept both"
    assert claude_stub.main_requests("resolver")
