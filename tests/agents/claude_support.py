"""Fixtures for tests that run the real pinned ``claude`` against the scripted Messages API stub."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agentcli import agent_cli
from tests.agents.stub_messages import Stub


def done(summary: str, notes: str = "") -> list[dict[str, Any]]:
    """The two closing steps of a task: the structured handoff, then a final text."""
    return [
        {"tools": [{"name": "StructuredOutput", "input": {"summary": summary, "notes": notes}}]},
        {"text": "finished"},
    ]


def writes(path: str, content: str) -> dict[str, Any]:
    return {"tools": [{"name": "Write", "input": {"file_path": "{cwd}/" + path, "content": content}}]}


def bash(command: str) -> dict[str, Any]:
    return {"tools": [{"name": "Bash", "input": {"command": command, "description": "run"}}]}


def claude_stub_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stub]:
    """The stub on 127.0.0.1, ``claude`` on PATH, a fake key; scripts go in ``stub.script``."""
    claude = agent_cli("claude-code")
    stub = Stub().start()
    monkeypatch.setenv("PATH", f"{claude.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
    try:
        yield stub
    finally:
        stub.stop()


def claude_bin() -> Path:
    return agent_cli("claude-code")
