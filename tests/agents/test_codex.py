"""The codex backend end to end: the real pinned `codex` against a scripted Responses API stub."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agentwaves.llm.base import Usage
from agentwaves.llm.usage import cost_usd
from tests.agents.codex_support import MODEL, done, shell
from tests.e2e.helpers import git, latest_state, wave_commits, write_yaml


def three_waves(tmp_path: Path) -> Path:
    tasks = [
        {"id": "a", "title": "A", "files": ["a.txt"]},
        {"id": "b", "title": "B", "files": ["b.txt"], "depends_on": ["a"]},
        {"id": "c", "title": "C", "files": ["c.txt"], "depends_on": ["b"]},
    ]
    return write_yaml(tmp_path / "plan.yaml", {"feature": "letters", "tasks": tasks})


def events_of(repo: Path, state: dict) -> list[dict]:
    path = repo / ".agentwaves" / "runs" / state["run_id"] / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_three_waves_one_commit_each_usage_cost_and_contained_writes(
    make_repo, run_cli, codex_stub, tmp_path
) -> None:
    repo = make_repo()
    outside = tmp_path / "outside.txt"
    escape = f"printf 'A\\n' > a.txt; echo x > {repo}/escape.txt; echo y > {outside}; echo z > ~/home.txt"
    codex_stub.script = {
        "a": [shell(escape), done("wrote a.txt", "a is first")],
        "b": [shell("printf 'B\\n' > b.txt"), done("wrote b.txt")],
        "c": [shell("printf 'C\\n' > c.txt"), done("wrote c.txt")],
    }
    res = run_cli("execute", "--agent", "codex", "--repo", repo, "--plan", three_waves(tmp_path))
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    assert state["state"] == "done"
    commits = wave_commits(repo, state)
    assert [s for s, _ in commits] == [f"agentwaves: wave {i} complete ({g})" for i, g in enumerate("abc", 1)]
    for name in "abc":
        assert git(repo, "show", f"{state['branch']}:{name}.txt") == name.upper()
    # the writes outside the worktree went nowhere: not the user's checkout, not /tmp, not HOME
    assert not (repo / "escape.txt").exists() and not outside.exists()
    assert not (Path.home() / "home.txt").exists()
    # b's prompt carried a's handoff (the final message's JSON)
    assert "a is first" in json.dumps(codex_stub.requests_of("b")[0]["input"])
    tasks = {t["id"]: t for w in state["waves"] for g in w["groups"] for t in g["tasks"]}
    assert tasks["a"]["files_written"] == ["a.txt"]
    assert tasks["a"]["handoff"]["summary"] == "wrote a.txt"
    # usage: two responses per task (the command, then the handoff), priced with our table
    per_task = Usage(input_tokens=1600, output_tokens=100, cache_read_input_tokens=400)
    status = json.loads(run_cli("status", "--json", "--repo", repo).stdout)
    assert status["usage"]["input_tokens"] == 3 * 1600
    assert status["usage"]["cache_read_input_tokens"] == 3 * 400
    assert status["usage"]["cost_usd"] == pytest.approx(3 * cost_usd(MODEL, per_task), rel=1e-3)
    assert status["usage"]["cost_usd"] > 0
    tools = [(e["task"], e["tool"]) for e in events_of(repo, state) if e["type"] == "tool"]
    assert ("a", "shell") in tools and ("c", "shell") in tools
    # the transcript in the builtin's shapes: `logs` shows the command and its handoff message
    log = run_cli("logs", state["run_id"], "b", "--repo", repo).stdout
    assert "→ shell" in log and "b.txt" in log and "wrote b.txt" in log


def test_auth_failure_fails_the_task_with_one_line_and_resumes(
    make_repo, run_cli, codex_stub, tmp_path
) -> None:
    repo = make_repo()
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": [{"id": "a", "title": "A"}]})
    codex_stub.script = {"a": [shell("printf 'A\\n' > a.txt"), done("wrote a.txt")]}
    codex_stub.faults = {"a": [401]}
    res = run_cli("execute", "--agent", "codex", "--repo", repo, "--plan", plan)
    assert res.exit_code == 1
    state = latest_state(repo)
    error = state["waves"][0]["groups"][0]["tasks"][0]["error"]
    assert "401" in error and "codex login" in error and "\n" not in error
    res = run_cli("resume", "--repo", repo)
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    assert state["state"] == "done"
    assert git(repo, "show", f"{state['branch']}:a.txt") == "A"


def test_a_hang_is_killed_with_its_process_group(make_repo, run_cli, codex_stub, tmp_path) -> None:
    repo = make_repo({"agentwaves.yaml": "stuck_after: 3\n"})
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": [{"id": "a", "title": "A"}]})
    codex_stub.faults = {"a": ["hang"]}
    res = run_cli("execute", "--agent", "codex", "--repo", repo, "--plan", plan)
    assert res.exit_code == 1
    error = latest_state(repo)["waves"][0]["groups"][0]["tasks"][0]["error"]
    assert "codex hung" in error and "killed" in error
    left = subprocess.run(["pgrep", "-f", f"codex exec.*{repo}"], capture_output=True, text=True).stdout
    assert left == ""


def test_missing_or_too_old_codex_is_one_line_exit_2_before_any_run(make_repo, run_cli, tmp_path) -> None:
    old = tmp_path / "old-codex"
    old.write_text("#!/bin/sh\necho 'codex-cli 0.1.0'\n")
    old.chmod(0o755)
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": [{"id": "a", "title": "A"}]})
    for command, expected in (("no-such-codex", "not installed"), (str(old), "older than 0.171.0")):
        repo = make_repo(
            {"agentwaves.yaml": f"agent_command: {command}\n"}, name=f"repo-{Path(command).name}"
        )
        res = run_cli("execute", "--agent", "codex", "--repo", repo, "--plan", plan)
        assert res.exit_code == 2, res.stderr
        line = res.stderr.strip()
        assert "\n" not in line and expected in line and "npm install -g @openai/codex" in line
        assert not (repo / ".agentwaves" / "runs").exists()


def test_an_openai_key_reaches_codex_as_codex_api_key_when_it_has_no_login(tmp_path: Path) -> None:
    from agentwaves.agents.drivers.codex import key_env

    # codex 0.171's built-in provider reads no OPENAI_API_KEY (the real run: tests/raycluster)
    env = {"OPENAI_API_KEY": "sk-1", "PATH": "/bin"}
    assert key_env(tmp_path, env) == {**env, "CODEX_API_KEY": "sk-1"}
    assert key_env(tmp_path, {**env, "CODEX_API_KEY": "sk-2"})["CODEX_API_KEY"] == "sk-2"
    (tmp_path / "auth.json").write_text("{}")
    assert key_env(tmp_path, env) == env  # its login decides
