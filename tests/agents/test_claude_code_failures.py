"""claude-code: containment, API failures, hangs, kill -9, missing CLI: the real `claude`, a scripted API."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import yaml

from tests.agents.claude_support import bash, done, writes
from tests.agents.run_support import kill_9_mid_task_then_resume, leftover, plan
from tests.e2e.helpers import git, latest_state
from tests.reliability.support import events, tasks_of


def settings(**kw: object) -> str:
    return yaml.safe_dump(kw)


def test_writes_and_commands_outside_the_worktree_are_contained(make_repo, run_cli, claude_stub, tmp_path):
    repo = make_repo()
    home = Path(os.environ["HOME"])
    (home / ".claude").mkdir()
    (home / ".claude" / ".credentials.json").write_text('{"token": "sk-ant-oat-secret"}')
    net = f"python3 -c 'import urllib.request; urllib.request.urlopen(\"{claude_stub.url}\", timeout=3)'"
    command = "; ".join(
        [
            f"echo x > {repo}/evil-bash.txt",
            f"echo y > {home}/evil-home.txt",
            'echo z > "$(git rev-parse --git-dir)/evil-git"',
            f"({net} && echo NET-OK || echo NET-BLOCKED) > net.txt",
            "cat ~/.claude/.credentials.json > cred.txt",
            "env > env.txt",
            "(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c sk-ant-test) > procenv.txt",
            "echo ok > inside.txt",
        ]
    )
    outside_write = {"name": "Write", "input": {"file_path": f"{repo}/evil-write.txt", "content": "x"}}
    claude_stub.script = {"a": [{"tools": [outside_write]}, bash(command), *done("tried")]}
    res = run_cli(
        "execute",
        "--agent",
        "claude-code",
        "--repo",
        repo,
        "--plan",
        plan(tmp_path, {"id": "a", "title": "A"}),
    )
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    branch = state["branch"]
    assert git(repo, "show", f"{branch}:inside.txt") == "ok"
    assert git(repo, "show", f"{branch}:net.txt") == "NET-BLOCKED"
    assert git(repo, "show", f"{branch}:cred.txt") == ""
    assert "sk-ant-test" not in git(repo, "show", f"{branch}:env.txt")
    assert git(repo, "show", f"{branch}:procenv.txt") == "0"  # nor in the agent's /proc/PID/environ
    for path in (repo / "evil-write.txt", repo / "evil-bash.txt", home / "evil-home.txt"):
        assert not path.exists(), path
    assert not list((repo / ".git").rglob("evil-git"))
    tools = [(e["tool"], e["error"]) for e in events(repo) if e["type"] == "tool"]
    assert ("Write", True) in tools and ("Bash", False) in tools


def test_529_then_success_and_persistent_529_lowers_concurrency(make_repo, run_cli, claude_stub, tmp_path):
    repo = make_repo({"agentwaves.yaml": settings(retry_attempts=2, retry_initial_wait=0.01, max_agents=2)})
    claude_stub.script = {t: [writes(f"{t}.txt", t), *done(f"{t} done")] for t in "ab"}
    # a: one 529, retried by claude itself; b: more than claude's own retry (1), so agentwaves runs it again
    claude_stub.faults = {"a": [529], "b": [429, 529, 529]}
    tasks = [{"id": t, "title": t, "files": [f"{t}.txt"]} for t in "ab"]
    res = run_cli("execute", "--agent", "claude-code", "--repo", repo, "--plan", plan(tmp_path, *tasks))
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    assert all(t["state"] == "done" for t in tasks_of(state).values())
    evs = events(repo)
    retries = {(e["task"], e["kind"]) for e in evs if e["type"] == "retry"}
    assert {("a", "overloaded"), ("b", "rate_limit"), ("b", "overloaded")} <= retries
    # the 429 and then the rerun each halve the concurrency (2 -> 1, then it stays 1)
    assert [e["capacity"] for e in evs if e["type"] == "concurrency" and e["reason"] == "rate limited"] == [
        1,
        1,
    ]
    assert tasks_of(state)["b"]["retries"] >= 2


def test_auth_error_and_turn_limit_fail_the_task_with_one_line(make_repo, run_cli, claude_stub, tmp_path):
    repo = make_repo({"agentwaves.yaml": settings(max_turns=1, retry_attempts=1)})
    claude_stub.script = {"a": [*done("a")], "b": [writes("b.txt", "b"), writes("b2.txt", "b"), *done("b")]}
    claude_stub.faults = {"a": [401] * 10}  # a revoked key: every call
    tasks = [{"id": t, "title": t} for t in "ab"]
    res = run_cli("execute", "--agent", "claude-code", "--repo", repo, "--plan", plan(tmp_path, *tasks))
    assert res.exit_code == 1
    ts = tasks_of(latest_state(repo))
    assert ts["a"]["state"] == ts["b"]["state"] == "failed"
    assert "could not authenticate (HTTP 401)" in ts["a"]["error"]
    assert "turn limit" in ts["b"]["error"]
    assert all("\n" not in ts[t]["error"] for t in "ab")


def test_a_hang_is_killed_with_its_process_group_and_resumes(make_repo, run_cli, claude_stub, tmp_path):
    repo = make_repo({"agentwaves.yaml": settings(stuck_after=5)})
    claude_stub.script = {"a": [writes("a.txt", "A"), *done("a done")]}
    claude_stub.faults = {"a": ["hang"]}
    p = plan(tmp_path, {"id": "a", "title": "A", "files": ["a.txt"]})
    t0 = time.monotonic()
    res = run_cli("execute", "--agent", "claude-code", "--repo", repo, "--plan", p)
    assert res.exit_code == 1 and time.monotonic() - t0 < 60
    task = tasks_of(latest_state(repo))["a"]
    assert task["state"] == "failed" and "hung (no output for 5 s)" in task["error"]
    assert len(claude_stub.main_requests("a")) == 1  # it hung in its API call
    assert leftover(repo / ".agentwaves" / "worktrees") == []
    (repo / "agentwaves.yaml").write_text(settings(stuck_after=120))  # a loaded machine starts claude slowly
    res = run_cli("resume", "--repo", repo)
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    assert git(repo, "show", f"{state['branch']}:a.txt") == "A"


def test_kill_9_mid_task_then_resume(make_repo, claude_stub, tmp_path, run_cli):
    repo = make_repo()
    claude_stub.script = {t: [writes(f"{t}.txt", t.upper()), *done(f"{t} done")] for t in "ab"}
    claude_stub.faults = {"b": ["hang"]}
    called = lambda: len(claude_stub.main_requests("b")) >= 1  # noqa: E731
    kill_9_mid_task_then_resume(repo, tmp_path, run_cli, "claude-code", called)


def test_missing_or_old_cli_is_one_line_exit_2_before_any_run(make_repo, run_cli, tmp_path, monkeypatch):
    repo = make_repo()
    p = plan(tmp_path, {"id": "a", "title": "A"})
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    old = tmp_path / "old-claude"
    old.write_text("#!/bin/sh\necho '1.0.3 (Claude Code)'\n")
    old.chmod(0o755)
    cases = [
        (("execute", "--plan", p), "`claude` is not installed", None),
        (("plan", "add a thing"), "`claude` is not installed", None),
        (("execute", "--plan", p), "version 1.0.3, older than 2.1.0", str(old)),
    ]
    for args, message, command in cases:
        if command:
            (repo / "agentwaves.yaml").write_text(settings(agent_command=command))
        res = run_cli(*args, "--agent", "claude-code", "--repo", repo)
        assert res.exit_code == 2, res.stderr
        err = res.stderr.strip()
        assert (
            len(err.splitlines()) == 1
            and message in err
            and "npm install -g @anthropic-ai/claude-code" in err
        )
    assert not (repo / ".agentwaves" / "runs").exists()
    assert "agentwaves" not in git(repo, "branch", "--list", "--all")


def test_plan_through_claude_code_is_validated_and_retried(make_repo, run_cli, claude_stub):
    repo = make_repo({"README.md": "# app\n", "src/app.py": "x = 1\n"})
    bad = {"feature": "csv", "tasks": [{"id": "a", "title": "A", "depends_on": ["nope"]}]}
    good = {
        "feature": "csv",
        "tasks": [
            {"id": "a", "title": "A", "files": ["src/a.py"]},
            {"id": "b", "title": "B", "files": ["src/b.py"], "depends_on": ["a"]},
        ],
    }
    read = {"tools": [{"name": "Read", "input": {"file_path": "{cwd}/src/app.py"}}]}
    submit = lambda plan: {"tools": [{"name": "StructuredOutput", "input": plan}]}  # noqa: E731
    claude_stub.script = {
        "planner": [read, submit(bad), {"text": "done"}],
        "planner-retry": [submit(good), {"text": "done"}],
    }
    res = run_cli("plan", "add csv export", "--agent", "claude-code", "--repo", repo, "--json")
    assert res.exit_code == 0, res.stderr + res.stdout
    written = yaml.safe_load((repo / ".agentwaves" / "plan.yaml").read_text())
    assert [t["id"] for t in written["tasks"]] == ["a", "b"]
    retry = json.dumps(claude_stub.main_requests("planner-retry")[0]["messages"][0])
    assert "nope" in retry  # the problem went back to the agent
    log = (repo / ".agentwaves" / "logs" / "planner.log").read_text()
    assert '"Read"' in log


def test_the_budget_passes_down_and_stops_the_run_cleanly(make_repo, run_cli, claude_stub, tmp_path):
    repo = make_repo()
    two = {t: [writes(f"{t}.txt", t), writes(f"{t}2.txt", t), *done(f"{t} done")] for t in "ab"}
    claude_stub.script = two
    p = plan(tmp_path, {"id": "a", "title": "a"}, {"id": "b", "title": "b", "depends_on": ["a"]})
    # each scripted call costs $0.005 on claude's default model: the budget ends inside a's third call
    res = run_cli("execute", "--agent", "claude-code", "--repo", repo, "--plan", p, "--budget-usd", "0.012")
    assert res.exit_code == 1
    state = latest_state(repo)
    assert state["state"] == "stopped" and "budget" in state["error"]
    a = tasks_of(state)["a"]
    assert a["state"] == "pending" and a["usage"]["cost_usd"] > 0
    log = (repo / ".agentwaves" / "runs" / state["run_id"] / "logs" / "a.log").read_text()
    assert '"--max-budget-usd", "0.0120"' in log
    res = run_cli("resume", "--repo", repo, "--budget-usd", "5")
    assert res.exit_code == 0, res.stderr + res.stdout
    assert all(t["state"] == "done" for t in tasks_of(latest_state(repo)).values())
