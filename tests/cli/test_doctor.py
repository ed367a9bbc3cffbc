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
    assert list(checks) == ["builtin", "claude-code", "bubblewrap", "git"]
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
    assert res.exit_code == 0 and len(lines) == 4
    assert lines[1].split()[:3] == ["claude-code", "ok", "2.1.332"] and "auth: ANTHROPIC_API_KEY" in lines[1]
    assert lines[3].startswith("git ") and " ok " in lines[3]


def test_doctor_says_how_to_install_a_missing_agent(run_cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    res = run_cli("doctor", "--agent", "claude-code", "--repo", tmp_path)
    assert res.exit_code == 1
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("claude-code"))
    assert "missing" in line and "npm install -g @anthropic-ai/claude-code" in line
    report = json.loads(run_cli("doctor", "--json", "--llm", "fake", "--repo", tmp_path).stdout)
    assert report["agent"] == "builtin"
