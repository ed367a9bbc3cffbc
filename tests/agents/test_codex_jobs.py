"""Planner and resolver through the real pinned `codex` and the Codex ACP adapter (`--agent acp`)."""

from __future__ import annotations

import json

import pytest
import yaml

from agentwaves.state.events import read_events
from tests.agents.codex_support import done, shell
from tests.e2e.helpers import git, latest_state, write_yaml

BAD = {"feature": "csv", "tasks": [{"id": "a", "title": "A", "depends_on": ["nope"]}]}
GOOD = {
    "feature": "csv",
    "tasks": [
        {"id": "a", "title": "A", "files": ["src/a.py"]},
        {"id": "b", "title": "B", "files": ["src/b.py"], "depends_on": ["a"]},
    ],
}


@pytest.mark.parametrize("agent", ["codex", "acp"])
def test_plan_reads_the_repository_read_only_validated_and_retried(
    agent, make_repo, run_cli, request
) -> None:
    stub = request.getfixturevalue("codex_stub" if agent == "codex" else "codex_acp_stub")
    files = {"README.md": "# app\n", "src/app.py": "x = 1\n", "agentwaves.yaml": "agent_command: codex-acp\n"}
    repo = make_repo(files if agent == "acp" else {k: v for k, v in files.items() if k != "agentwaves.yaml"})
    stub.script = {
        "planner": [shell("cat src/app.py; echo x > planned.txt"), {"text": json.dumps(BAD)}],
        "planner-retry": [{"text": "```json\n" + json.dumps(GOOD) + "\n```"}],
    }
    res = run_cli("plan", "add csv export", "--agent", agent, "--repo", repo, "--json")
    assert res.exit_code == 0, res.stderr + res.stdout
    written = yaml.safe_load((repo / ".agentwaves" / "plan.yaml").read_text())
    assert [t["id"] for t in written["tasks"]] == ["a", "b"]
    assert "nope" in json.dumps(stub.requests_of("planner-retry")[0]["input"])  # the problem went back
    # the planner read the file and could not write
    outputs = [i for i in stub.requests_of("planner")[-1]["input"] if i.get("type") == "function_call_output"]
    assert "x = 1" in json.dumps(outputs)
    assert not (repo / "planned.txt").exists()


@pytest.mark.parametrize("agent", ["codex", "acp"])
def test_a_merge_conflict_is_resolved_by_the_agent(agent, make_repo, run_cli, request, tmp_path) -> None:
    stub = request.getfixturevalue("codex_stub" if agent == "codex" else "codex_acp_stub")
    repo = make_repo({"agentwaves.yaml": "agent_command: codex-acp\n"} if agent == "acp" else None)
    tasks = [{"id": t, "title": t.upper(), "files": [f"{t}.txt"]} for t in "xy"]
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "both", "tasks": tasks})
    # both write shared.txt too (undeclared): their groups' merge conflicts
    stub.script = {
        t: [shell(f"echo {t} > {t}.txt; printf 'top\\nfrom {t}\\n' > shared.txt"), done(t)] for t in "xy"
    }
    stub.script["resolver"] = [shell("printf 'top\\nfrom x\\nfrom y\\n' > shared.txt"), done("kept both")]
    res = run_cli("execute", "--agent", agent, "--repo", repo, "--plan", plan)
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    assert git(repo, "show", f"{state['branch']}:shared.txt") == "top\nfrom x\nfrom y"
    events = read_events(repo / ".agentwaves" / "runs" / state["run_id"] / "events.jsonl")
    resolved = [e for e in events if e["type"] == "resolved"]
    assert len(resolved) == 1 and resolved[0]["summary"] == "kept both"
    assert stub.requests_of("resolver")
