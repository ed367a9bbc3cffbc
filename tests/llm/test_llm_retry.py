"""The retry policy: backoff, retry-after, the cap, exhaustion, fatal errors and the on_retry hook."""

from __future__ import annotations

import random

import pytest

from agentwaves.errors import AgentwavesError
from agentwaves.llm.base import (
    CallContext,
    FatalLLMError,
    LLMError,
    Message,
    Request,
    Response,
    RetriesExhausted,
    RetryableError,
    TextBlock,
)
from agentwaves.llm.retry import RetryingLLM, RetryPolicy

REQ = Request(system="s", messages=[Message.user("hi")])
CTX = CallContext(agent="implementer", task_id="t1")


class Flaky:
    """Raises the given errors in order, then answers."""

    name = "flaky"
    model = "m"

    def __init__(self, *errors: LLMError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def complete(self, request: Request, ctx: CallContext) -> Response:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Response(content=[TextBlock(text="ok")])


def overloaded() -> RetryableError:
    return RetryableError("overloaded (529)", kind="overloaded")


def test_recovers_and_reports_each_retry() -> None:
    inner = Flaky(overloaded(), RetryableError("timeout", kind="timeout"))
    sleeps: list[float] = []
    seen: list[tuple[str, int, float]] = []
    llm = RetryingLLM(
        inner,
        RetryPolicy(jitter=0),
        on_retry=lambda e, n, w: seen.append((e.kind, n, w)),
        sleep=sleeps.append,
    )
    assert llm.complete(REQ, CTX).text == "ok"
    assert inner.calls == 3
    assert seen == [("overloaded", 1, 1.0), ("timeout", 2, 2.0)]
    assert sleeps == [1.0, 2.0]
    assert (llm.name, llm.model) == ("flaky", "m")


def test_exhaustion_names_kind_and_count() -> None:
    inner = Flaky(*(overloaded() for _ in range(10)))
    sleeps: list[float] = []
    with pytest.raises(RetriesExhausted) as info:
        RetryingLLM(inner, RetryPolicy(jitter=0, max_wait=5), sleep=sleeps.append).complete(REQ, CTX)
    assert str(info.value) == "gave up after 6 attempts: overloaded (529)"
    assert isinstance(info.value.last, RetryableError) and info.value.last.kind == "overloaded"
    assert inner.calls == 6
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]  # exponential, capped by max_wait
    assert isinstance(info.value, AgentwavesError) and info.value.exit_code == 1


def test_total_time_limit_gives_up_early() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    inner = Flaky(*(overloaded() for _ in range(10)))
    policy = RetryPolicy(jitter=0, initial_wait=10, max_wait=100, max_total=35)
    with pytest.raises(RetriesExhausted, match=r"gave up after 3 attempts \(the 35s limit was reached\)"):
        RetryingLLM(inner, policy, sleep=sleep, clock=lambda: now[0]).complete(REQ, CTX)
    assert now[0] == 30.0  # waited 10 + 20; the next 40 s wait would cross 35 s


def test_fatal_is_never_retried() -> None:
    inner = Flaky(FatalLLMError("bad request"))
    calls: list[int] = []
    with pytest.raises(FatalLLMError, match="bad request"):
        RetryingLLM(inner, on_retry=lambda e, n, w: calls.append(n), sleep=lambda s: None).complete(REQ, CTX)
    assert inner.calls == 1 and calls == []


def test_retry_after_honoured_with_bounded_jitter() -> None:
    inner = Flaky(*(RetryableError("rate limited (429)", kind="rate_limit", retry_after=7) for _ in range(3)))
    sleeps: list[float] = []
    llm = RetryingLLM(inner, RetryPolicy(jitter=0.1), sleep=sleeps.append, rng=random.Random(1))
    llm.complete(REQ, CTX)
    assert len(sleeps) == 3 and all(7.0 <= s <= 7.7 for s in sleeps)


def test_retry_after_beyond_cap_fails_fast() -> None:
    inner = Flaky(RetryableError("rate limited (429)", kind="rate_limit", retry_after=90))
    sleeps: list[float] = []
    with pytest.raises(FatalLLMError) as info:
        RetryingLLM(inner, RetryPolicy(retry_after_cap=60), sleep=sleeps.append).complete(REQ, CTX)
    assert str(info.value) == "rate limited: the API asked to wait 90s, more than the cap of 60s"
    assert sleeps == [] and inner.calls == 1


def test_policy_validation_and_docs() -> None:
    assert RetryPolicy().model_dump() == {
        "max_attempts": 6,
        "initial_wait": 1.0,
        "max_wait": 30.0,
        "max_total": 300.0,
        "retry_after_cap": 60.0,
        "jitter": 0.2,
    }
    assert all(f.description for f in RetryPolicy.model_fields.values())
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(unknown=1)  # type: ignore[call-arg]
