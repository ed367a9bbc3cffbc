"""Fixtures of the LLM tests; the helpers themselves live in ``llm_support``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llm_support import StubAPI, start_stub_api


@pytest.fixture
def stub_api() -> Iterator[StubAPI]:
    """A stub Messages API on 127.0.0.1 (ephemeral port), stopped after the test."""
    api, stop = start_stub_api()
    try:
        yield api
    finally:
        stop()
