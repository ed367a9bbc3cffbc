"""The acp backend: the real agent-client-protocol library end to end with the real Codex ACP adapter
(`codex-acp`, pinned from npm) against the scripted Responses API stub; the client's policy and path gate
with the library's own request types."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest
from acp import RequestError
from acp.schema import (
    AuthEnvVar,
    AuthMethodAgent,
    EnvVarAuthMethod,
    PermissionOption,
    ToolCallLocation,
    ToolCallUpdate,
)

from agentwaves.agents.backend import NoEvents
from agentwaves.agents.drivers.acp import adapter_args
from agentwaves.agents.drivers.acp_client import AcpClient, env_auth_method
from agentwaves.agents.loop import Transcript
from agentwaves.redact import Redactor
from tests.agents.codex_support import done, shell
from tests.e2e.helpers import git, latest_state, wave_commits, write_yaml


def test_two_waves_through_the_codex_acp_adapter(make_repo, run_cli, codex_acp_stub, tmp_path) -> None:
    repo = make_repo({"agentwaves.yaml": "agent_command: codex-acp\n"})
    outside = tmp_path / "outside.txt"
    codex_acp_stub.script = {
        "a": [shell(f"printf 'A\\n' > a.txt; echo x > {repo}/escape.txt; echo y > {outside}"),
              done("wrote a.txt", "a is first")],
        "b": [shell("printf 'B\\n' > b.txt"), done("wrote b.txt")],
    }  # fmt: skip
    tasks = [
        {"id": "a", "title": "A", "files": ["a.txt"]},
        {"id": "b", "title": "B", "files": ["b.txt"], "depends_on": ["a"]},
    ]
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "letters", "tasks": tasks})
    res = run_cli("execute", "--agent", "acp", "--repo", repo, "--plan", plan)
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    assert [s for s, _ in wave_commits(repo, state)] == [
        "agentwaves: wave 1 complete (a)",
        "agentwaves: wave 2 complete (b)",
    ]
    assert git(repo, "show", f"{state['branch']}:a.txt") == "A"
    assert git(repo, "show", f"{state['branch']}:b.txt") == "B"
    assert not (repo / "escape.txt").exists() and not outside.exists()
    done_tasks = {t["id"]: t for w in state["waves"] for g in w["groups"] for t in g["tasks"]}
    assert done_tasks["a"]["handoff"] == {
        "task": "a",
        "summary": "wrote a.txt",
        "notes": "a is first",
        "files": ["a.txt"],
        "files_total": 1,
    }
    assert "a is first" in json.dumps(codex_acp_stub.requests_of("b")[0]["input"])
    events = (repo / ".agentwaves" / "runs" / state["run_id"] / "events.jsonl").read_text().splitlines()
    tools = [(e["task"], e["tool"]) for e in map(json.loads, events) if e["type"] == "tool"]
    assert ("a", "execute") in tools and ("b", "execute") in tools
    log = run_cli("logs", state["run_id"], "b", "--repo", repo).stdout
    assert "→ execute" in log and "b.txt" in log and "wrote b.txt" in log
    # codex-acp 0.16 reports no tokens (its prompt response has no usage) and no cost: only usage_update
    # with the context window's occupancy (used of size), which is not what was billed and is not counted
    transcript = (repo / ".agentwaves" / "runs" / state["run_id"] / "logs" / "a.log").read_text()
    updates = [r["data"] for r in map(json.loads, transcript.splitlines()) if r["kind"] == "acp:usage_update"]
    assert updates and all(u["used"] > 0 and u["size"] > u["used"] and "cost" not in u for u in updates)
    assert done_tasks["a"]["usage"]["input_tokens"] == done_tasks["a"]["usage"]["output_tokens"] == 0
    # so its cost is unknown, not a known $0: per task, for the run, and in `status --json`
    assert done_tasks["a"]["usage"]["cost_known"] is False and state["usage"]["cost_known"] is False
    status = json.loads(run_cli("status", state["run_id"], "--repo", repo, "--json").stdout)
    listed = {t["id"]: t for w in status["waves"] for g in w["groups"] for t in g["tasks"]}
    assert listed["a"]["usage"]["cost_known"] is False and listed["b"]["usage"]["cost_known"] is False
    assert status["usage"]["cost_known"] is False  # the run's total too
    human = run_cli("status", state["run_id"], "--repo", repo).stdout
    assert "cache read; cost unknown" in human
    report = (repo / ".agentwaves" / "runs" / state["run_id"] / "report.md").read_text()
    assert "| `a` | 0 | 0 | 0 | 0 | unknown |" in report
    assert "| **Run total** | 0 | 0 | 0 | 0 | unknown |" in report


def test_a_silent_acp_agent_is_killed_with_its_process_group(
    make_repo, run_cli, codex_acp_stub, tmp_path
) -> None:
    repo = make_repo({"agentwaves.yaml": "agent_command: codex-acp\nstuck_after: 3\n"})
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": [{"id": "a", "title": "A"}]})
    codex_acp_stub.faults = {"a": ["hang"]}
    res = run_cli("execute", "--agent", "acp", "--repo", repo, "--plan", plan)
    assert res.exit_code == 1
    error = latest_state(repo)["waves"][0]["groups"][0]["tasks"][0]["error"]
    assert "hung" in error and "killed" in error
    left = subprocess.run(["pgrep", "-f", "codex-acp"], capture_output=True, text=True).stdout.split()
    assert [p for p in left if _runs_in(p, repo.parent)] == []


def _runs_in(pid: str, root: Path) -> bool:
    """Whether process ``pid`` works somewhere under ``root`` (this test's worktrees)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(root)
    except OSError:
        return False


def test_acp_needs_an_installed_agent_command(make_repo, run_cli, tmp_path) -> None:
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": [{"id": "a", "title": "A"}]})
    for yaml_text, expected in (
        ("", "needs agent_command"),
        ("agent_command: no-such-agent --acp\n", "not installed"),
    ):
        repo = make_repo({"agentwaves.yaml": yaml_text or "max_agents: 2\n"}, name=f"r{len(yaml_text)}")
        res = run_cli("execute", "--agent", "acp", "--repo", repo, "--plan", plan)
        assert res.exit_code == 2 and expected in res.stderr and "\n" not in res.stderr.strip()
        assert not (repo / ".agentwaves" / "runs").exists()


def test_an_agent_that_needs_a_login_is_authenticated_with_the_key_its_environment_has() -> None:
    # codex-acp 0.16's methods, as its `initialize` lists them (the real run: tests/raycluster)
    methods = [
        AuthMethodAgent(id="chatgpt", name="Login with ChatGPT"),
        *(
            EnvVarAuthMethod(id=i, name=i, type="env_var", vars=[AuthEnvVar(name=var)])
            for i, var in (("codex-api-key", "CODEX_API_KEY"), ("openai-api-key", "OPENAI_API_KEY"))
        ),
        EnvVarAuthMethod(
            id="opt", name="opt", type="env_var", vars=[AuthEnvVar(name="X_KEY", optional=True)]
        ),
    ]
    assert env_auth_method(methods, {"OPENAI_API_KEY": "sk-1"}) == "openai-api-key"
    assert env_auth_method(methods, {"OPENAI_API_KEY": "sk-1", "CODEX_API_KEY": "sk-2"}) == "codex-api-key"
    assert env_auth_method(methods, {"OPENAI_API_KEY": ""}) is None  # a login method is never chosen
    assert env_auth_method(methods, {"X_KEY": "k"}) is None  # nothing required: not a key to use
    assert env_auth_method(None, {"OPENAI_API_KEY": "sk-1"}) is None


def test_the_codex_adapter_gets_the_base_url_and_keeps_a_key_it_is_given_in_memory(tmp_path) -> None:
    home = tmp_path / "codex-home"
    home.mkdir()
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "CODEX_HOME": str(home)}
    ephemeral = ["-c", 'cli_auth_credentials_store="ephemeral"']
    url = ["-c", 'openai_base_url="http://127.0.0.1:9/v1"']
    no_snapshot = ["-c", "features.shell_snapshot=false"]  # never its environment (the key) in a file
    assert adapter_args("/opt/bin/codex-acp", env) == [*no_snapshot, *url, *ephemeral]  # no login
    assert adapter_args("gemini", env) == []  # another agent reads its own variables
    (home / "config.toml").write_text('cli_auth_credentials_store = "keyring"\n')
    assert adapter_args("codex-acp", env) == [*no_snapshot, *url]  # its own store: left as it is
    (home / "config.toml").write_text('model = "m"\n')
    (home / "auth.json").write_text("{}")
    assert adapter_args("codex-acp", {"CODEX_HOME": str(home)}) == no_snapshot  # its login is used


# ----------------------------------------------------------------------------------- the client's policy

OPTIONS = [
    PermissionOption(option_id="yes", name="Allow", kind="allow_once"),
    PermissionOption(option_id="no", name="Reject", kind="reject_once"),
]


def client(tmp_path: Path, writable: bool = True) -> AcpClient:
    root = tmp_path / "wt"
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "x.py").write_text("one\ntwo\nthree\n")
    return AcpClient(root, NoEvents(), Transcript(None, Redactor()), writable=writable)


def decide(c: AcpClient, kind: str, *paths: str) -> str:
    call = ToolCallUpdate(
        tool_call_id="t", kind=kind, title=kind, locations=[ToolCallLocation(path=p) for p in paths]
    )
    reply = asyncio.run(c.request_permission("s", call, OPTIONS))
    return getattr(reply.outcome, "option_id", "cancelled")


def test_permissions_allow_edits_inside_the_worktree_only(tmp_path) -> None:
    c = client(tmp_path)
    inside = str(c.worktree / "src" / "x.py")
    assert decide(c, "edit", inside) == "yes"
    assert decide(c, "read", inside) == "yes"
    assert decide(c, "edit", str(tmp_path / "elsewhere.py")) == "no"
    assert decide(c, "edit", str(c.worktree / ".git" / "config")) == "no"
    assert decide(c, "edit") == "no"  # names no file
    assert decide(c, "execute") == "no" and decide(c, "fetch") == "no"
    (c.worktree / "link").symlink_to(tmp_path)
    assert decide(c, "edit", str(c.worktree / "link" / "x")) == "no"
    assert decide(client(tmp_path, writable=False), "edit", inside) == "no"


def test_fs_callbacks_go_through_the_path_gate(tmp_path) -> None:
    c = client(tmp_path)
    got = asyncio.run(c.read_text_file("s", str(c.worktree / "src" / "x.py"), line=2, limit=1))
    assert got.content == "two\n"
    asyncio.run(c.write_text_file("s", str(c.worktree / "src" / "new.py"), "new\n"))
    assert (c.worktree / "src" / "new.py").read_text() == "new\n" and c.written == {"src/new.py"}
    for path in (str(tmp_path / "out.txt"), str(c.worktree / ".git" / "HEAD"), "/etc/passwd"):
        with pytest.raises(RequestError):
            asyncio.run(c.write_text_file("s", path, "x"))
    assert not (tmp_path / "out.txt").exists()
    with pytest.raises(RequestError):
        asyncio.run(c.read_text_file("s", "/etc/passwd"))
    with pytest.raises(RequestError):
        asyncio.run(client(tmp_path, writable=False).write_text_file("s", str(c.worktree / "y"), "x"))


def test_usage_and_cost_are_kept_when_the_agent_reports_them(tmp_path) -> None:
    from acp.schema import Cost, UsageUpdate
    from acp.schema import Usage as AcpUsage

    from agentwaves.agents.drivers.acp import prompt_usage
    from agentwaves.llm.base import Usage

    reported = AcpUsage(total_tokens=1050, input_tokens=1000, output_tokens=50, cached_read_tokens=200)
    assert prompt_usage(reported) == Usage(input_tokens=800, output_tokens=50, cache_read_input_tokens=200)
    assert prompt_usage(None) == Usage()
    c = client(tmp_path)
    update = UsageUpdate(
        session_update="usage_update", used=10, size=100, cost=Cost(amount=0.25, currency="USD")
    )
    asyncio.run(c.session_update("s", update))
    assert c.cost_usd == 0.25
    euros = UsageUpdate(
        session_update="usage_update", used=10, size=100, cost=Cost(amount=9.0, currency="EUR")
    )
    asyncio.run(c.session_update("s", euros))
    assert c.cost_usd == 0.25  # not in USD: not a cost agentwaves can add up


def test_a_tool_call_without_its_completion_is_still_in_the_transcript(tmp_path) -> None:
    """A ``tool_call`` whose ``tool_call_update`` never arrives before the connection closes still gets
    its one ``tool`` record (what `agentwaves logs` shows as ``→ NAME``); a completed one is not doubled."""
    from acp.schema import ToolCallProgress, ToolCallStart

    log = tmp_path / "t.log"
    c = AcpClient(tmp_path, NoEvents(), Transcript(log, Redactor()), writable=True)
    for tid in ("done", "cut"):
        start = ToolCallStart(
            session_update="tool_call", tool_call_id=tid, title=f"run {tid}", kind="execute"
        )
        asyncio.run(c.session_update("s", start))
    finished = ToolCallProgress(session_update="tool_call_update", tool_call_id="done", status="completed")
    asyncio.run(c.session_update("s", finished))
    c.finish_pending()
    c.finish_pending()  # idempotent
    records = [json.loads(line) for line in log.read_text().splitlines()]
    tools = [r["data"] for r in records if r["kind"] == "tool"]
    assert len(tools) == 2 and all(t["name"] == "execute" for t in tools), tools
