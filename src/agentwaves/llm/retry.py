"""The one retry policy every backend runs under: exponential backoff with jitter, honouring ``retry-after``.

Backends raise :class:`RetryableError` for transient failures and :class:`FatalLLMError` for the rest;
:class:`RetryingLLM` retries the former with tenacity and never the latter. The real SDK's own retries
are off, so this is the only place that decides how long to wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from agentwaves.llm.base import (
    LLM,
    CallContext,
    FatalLLMError,
    Request,
    Response,
    RetriesExhausted,
    RetryableError,
)

if TYPE_CHECKING:
    from tenacity import RetryCallState

OnRetry = Callable[[RetryableError, int, float], None]


class RetryPolicy(BaseModel):
    """How transient model errors are retried. Every field has a safe default."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    max_attempts: int = Field(default=6, ge=1)
    """Attempts per model call, the first included; then :class:`RetriesExhausted`."""

    initial_wait: float = Field(default=1.0, ge=0)
    """Seconds before the first retry; doubled for each further retry (without a ``retry-after``)."""

    max_wait: float = Field(default=30.0, ge=0)
    """Upper bound, in seconds, of one exponential-backoff wait (before jitter)."""

    max_total: float = Field(default=300.0, ge=0)
    """Seconds one call may spend across all its attempts and waits; a wait that would cross it gives up."""

    retry_after_cap: float = Field(default=60.0, ge=0)
    """Longest ``retry-after`` honoured, in seconds; a longer one fails at once (:class:`FatalLLMError`)."""

    jitter: float = Field(default=0.2, ge=0, le=1)
    """Up to this fraction of each wait is added at random, so agents limited together retry apart."""

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1-based) when the server gave no ``retry-after``."""
        return min(self.max_wait, self.initial_wait * 2 ** (retry - 1))


class RetryingLLM:
    """Any :class:`LLM` under a :class:`RetryPolicy`; ``on_retry(error, attempt, wait)`` runs before a wait.

    ``attempt`` is the number of the attempt that just failed (1 for the first); ``wait`` is in seconds.
    ``sleep``, ``clock`` and ``rng`` are injectable so tests run instantly and deterministically.
    """

    def __init__(
        self,
        inner: LLM,
        policy: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        sleep: Callable[[float], None] = time.sleep,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.policy = policy or RetryPolicy()
        self.on_retry = on_retry
        self.name: str = inner.name
        self.model: str = inner.model
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()

    def complete(self, request: Request, ctx: CallContext) -> Response:
        policy = self.policy
        start = self._clock()

        def attempt() -> Response:
            try:
                return self.inner.complete(request, ctx)
            except RetryableError as exc:
                if exc.retry_after is not None and exc.retry_after > policy.retry_after_cap:
                    raise FatalLLMError(
                        f"rate limited: the API asked to wait {exc.retry_after:g}s, "
                        f"more than the cap of {policy.retry_after_cap:g}s"
                    ) from exc
                raise

        def wait(state: RetryCallState) -> float:
            err = _error(state)
            base = err.retry_after if err.retry_after is not None else policy.backoff(state.attempt_number)
            base = max(0.0, base)
            return base + self._rng.uniform(0, policy.jitter * base)

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= policy.max_attempts:
                return True
            return self._clock() - start + state.upcoming_sleep > policy.max_total

        def before_sleep(state: RetryCallState) -> None:
            if self.on_retry is not None:
                err = _error(state)
                err.task = ctx.task_id or ctx.agent
                self.on_retry(err, state.attempt_number, state.upcoming_sleep)

        from tenacity import RetryError, Retrying, retry_if_exception_type  # here: start-up time

        retrying = Retrying(
            sleep=self._sleep,
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(RetryableError),
            before_sleep=before_sleep,
        )
        try:
            return retrying(attempt)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            assert isinstance(last, RetryableError)
            n = exc.last_attempt.attempt_number
            within = "" if n >= policy.max_attempts else f" (the {policy.max_total:g}s limit was reached)"
            attempts = f"{n} attempt{'s' * (n != 1)}"
            raise RetriesExhausted(f"gave up after {attempts}{within}: {last}", last) from last


def _error(state: RetryCallState) -> RetryableError:
    exc = state.outcome.exception() if state.outcome is not None else None
    assert isinstance(exc, RetryableError)
    return exc
