"""Fixtures for tests that run the real pinned ``codex`` (and the Codex ACP adapter) against the
scripted Responses API stub."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agentcli import agent_cli
from tests.agents.stub_responses import ResponsesStub

MODEL = "gpt-5.1-codex"


def done(summary: str, notes: str = "") -> dict[str, Any]:
    """The final step: the handoff as the JSON the output schema asks for."""
    return {"text": json.dumps({"summary": summary, "notes": notes})}


def shell(command: str) -> dict[str, Any]:
    return {"shell": command}


def codex_config(stub: ResponsesStub) -> str:
    """A ``config.toml`` whose provider is the stub, with no retries (failure tests stay fast)."""
    return (
        f'model = "{MODEL}"\nmodel_provider = "stub"\n\n[model_providers.stub]\nname = "stub"\n'
        f'base_url = "{stub.url}"\nwire_api = "responses"\nenv_key = "OPENAI_API_KEY"\n'
        "request_max_retries = 0\nstream_max_retries = 0\n"
    )


def responses_stub_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: str
) -> Iterator[ResponsesStub]:
    """The stub on 127.0.0.1, the pinned ``cli`` on PATH, a user CODEX_HOME pointing at the stub."""
    program = agent_cli(cli)
    stub = ResponsesStub().start()
    home = tmp_path / "_codex_home"
    home.mkdir()
    (home / "config.toml").write_text(codex_config(stub))
    monkeypatch.setenv("CODEX_HOME", str(home))
    monkeypatch.setenv("PATH", f"{program.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    try:
        yield stub
    finally:
        stub.stop()
