"""`agentwaves doctor`: real programs on PATH (the pinned claude, bwrap, git), one line each, stable JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.agentcli import agent_cli

KEYS = {"name", "kind", "installed", "ok", "version", "path", "auth", "detail"}


def test_doctor_finds_claude_its_version_and_its_login(run_cli, monkeypatch, tmp_path) -> None:
    claude = agent_cli("claude-code")
    monkeypatch.setenv("PATH", f"{claude.parent}:{os.environ['PATH']}")
    res = run_cli("doctor", "--json", "--agent", "claude-code", "--repo", tmp_path)
    report = json.loads(res.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert all(set(c) == KEYS for c in report["checks"])
    assert list(checks) == ["builtin", "claude-code", "codex", "acp", "bubblewrap", "git"]
    cc = checks["claude-code"]
    assert cc["installed"] and cc["version"] == "2.1.332" and cc["auth"] is None and not cc["ok"]
    assert res.exit_code == 1 and report["ok"] is False  # installed, but no way to authenticate
    login = Path(os.environ["HOME"]) / ".claude" / ".credentials.json"
    login.parent.mkdir()
    login.write_text("{}")
    res = run_cli("doctor", "--json", "--agent", "claude-code", "--repo", tmp_path)
    cc = {c["name"]: c for c in json.loads(res.stdout)["checks"]}["claude-code"]
    assert cc["ok"] and cc["auth"] == "~/.claude/.credentials.json" and res.exit_code == 0
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    res = run_cli("doctor", "--agent", "claude-code", "--repo", tmp_path)
    lines = res.stdout.splitlines()
    assert res.exit_code == 0 and len(lines) == 6
    assert lines[1].split()[:3] == ["claude-code", "ok", "2.1.332"] and "auth: ANTHROPIC_API_KEY" in lines[1]
    assert lines[5].startswith("git ") and " ok " in lines[5]


def test_doctor_says_how_to_install_a_missing_agent(run_cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    res = run_cli("doctor", "--agent", "claude-code", "--repo", tmp_path)
    assert res.exit_code == 1
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("claude-code"))
    assert "missing" in line and "npm install -g @anthropic-ai/claude-code" in line
    report = json.loads(run_cli("doctor", "--json", "--llm", "fake", "--repo", tmp_path).stdout)
    assert report["agent"] == "builtin"


def test_doctor_finds_codex_and_its_login(run_cli, monkeypatch, tmp_path) -> None:
    codex = agent_cli("codex")
    monkeypatch.setenv("PATH", f"{codex.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex-home"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("CODEX_API_KEY", raising=False)
    checks = {
        c["name"]: c for c in json.loads(run_cli("doctor", "--json", "--repo", tmp_path).stdout)["checks"]
    }
    cx = checks["codex"]
    assert cx["installed"] and cx["version"] == "0.171.0" and cx["auth"] is None and not cx["ok"]
    assert "codex login" in cx["detail"]
    (tmp_path / "codex-home").mkdir()
    (tmp_path / "codex-home" / "auth.json").write_text("{}")
    res = run_cli("doctor", "--json", "--agent", "codex", "--repo", tmp_path)
    cx = {c["name"]: c for c in json.loads(res.stdout)["checks"]}["codex"]
    assert cx["ok"] and cx["auth"].endswith("codex-home/auth.json") and res.exit_code == 0


def test_doctor_acp_needs_agent_command_and_finds_it(run_cli, make_repo) -> None:
    repo = make_repo()
    res = run_cli("doctor", "--json", "--agent", "acp", "--repo", repo)
    acp = {c["name"]: c for c in json.loads(res.stdout)["checks"]}["acp"]
    assert not acp["installed"] and "agent_command" in acp["detail"] and res.exit_code == 1
    adapter = agent_cli("codex-acp")
    (repo / "agentwaves.yaml").write_text(f"agent_command: {adapter} --flag\n")
    res = run_cli("doctor", "--json", "--agent", "acp", "--repo", repo)
    acp = {c["name"]: c for c in json.loads(res.stdout)["checks"]}["acp"]
    assert acp["installed"] and acp["ok"] and acp["path"] == f"{adapter} --flag" and res.exit_code == 0
    (repo / "agentwaves.yaml").write_text("agent_command: no-such-acp-agent\n")
    line = next(ln for ln in run_cli("doctor", "--agent", "acp", "--repo", repo).stdout.splitlines()
                if ln.startswith("acp"))  # fmt: skip
    assert "missing" in line and "no-such-acp-agent" in line and "not installed" in line
