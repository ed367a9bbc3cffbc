"""drivers.call: the one rerun loop of claude-code and codex after a 429/529/5xx their own retries
could not get past (end to end with the real CLIs: test_claude_code_failures, test_codex_failures)."""

from __future__ import annotations

import pytest

from agentwaves.agents.drivers.call import Overloaded, rerun_overloaded
from agentwaves.agents.loop import AgentFailed
from tests.agents.events_support import Recorder


def test_reruns_after_overload_lowering_concurrency_then_succeeds() -> None:
    events, faults = (
        Recorder(),
        [
            Overloaded("x failed (HTTP 529)", "overloaded", detail="x: HTTP 529 after its own retries"),
            Overloaded("x failed (HTTP 429)", "rate_limit", reported=True),  # its events lowered it already
        ],
    )

    def once() -> str:
        if faults:
            raise faults.pop(0)
        return "ok"

    assert rerun_overloaded(once, events, initial_wait=0.001) == "ok"
    assert events.calls == [
        ("rate_limited", "x: HTTP 529 after its own retries"),
        ("retrying", ("overloaded", 1, 0.001)),
        ("retrying", ("rate_limit", 2, 0.002)),
    ]


def test_gives_up_after_the_reruns_with_the_last_one_line_failure() -> None:
    events, calls = Recorder(), []

    def once() -> str:
        calls.append(1)
        raise Overloaded(f"x failed (HTTP 503) #{len(calls)}", "overloaded")

    with pytest.raises(AgentFailed) as failed:
        rerun_overloaded(once, events, initial_wait=0.0, reruns=2)
    assert len(calls) == 3 and str(failed.value) == "x failed (HTTP 503) #3"
    assert not isinstance(failed.value, Overloaded)  # the run layer sees a plain failure
    assert [k for k, _ in events.calls].count("rate_limited") == 2


def test_other_failures_are_not_rerun() -> None:
    calls = []

    def once() -> str:
        calls.append(1)
        raise AgentFailed("x could not authenticate (HTTP 401)")

    with pytest.raises(AgentFailed, match="401"):
        rerun_overloaded(once, Recorder(), initial_wait=0.0)
    assert calls == [1]
