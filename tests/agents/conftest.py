"""Fixtures of the agent tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents.claude_support import claude_stub_fixture
from tests.agents.codex_support import responses_stub_fixture
from tests.agents.stub_messages import Stub
from tests.agents.stub_responses import ResponsesStub


@pytest.fixture
def claude_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stub]:
    """The Messages API stub on 127.0.0.1 with the pinned ``claude`` on PATH (see claude_support)."""
    yield from claude_stub_fixture(monkeypatch)


@pytest.fixture
def codex_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesStub]:
    """The Responses API stub on 127.0.0.1 with the pinned ``codex`` on PATH (see codex_support)."""
    yield from responses_stub_fixture(tmp_path, monkeypatch, "codex")


@pytest.fixture
def codex_acp_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesStub]:
    """The same stub with the pinned Codex ACP adapter (``codex-acp``) on PATH."""
    yield from responses_stub_fixture(tmp_path, monkeypatch, "codex-acp")
