"""Fixtures of the agent tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agents.claude_support import claude_stub_fixture
from tests.agents.stub_messages import Stub


@pytest.fixture
def claude_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stub]:
    """The Messages API stub on 127.0.0.1 with the pinned ``claude`` on PATH (see claude_support)."""
    yield from claude_stub_fixture(monkeypatch)
