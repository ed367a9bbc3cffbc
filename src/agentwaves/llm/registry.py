"""Backends by name. Every backend comes back wrapped in the one retry policy.

The Anthropic module (and with it the ``anthropic`` SDK) is imported only when that backend is chosen.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import ValidationError

from agentwaves.errors import UsageError
from agentwaves.llm.base import LLM, CallContext, Request, Response
from agentwaves.llm.fake import FakeLLM, FakeScript
from agentwaves.llm.replay import RecordingLLM
from agentwaves.llm.retry import OnRetry, RetryingLLM, RetryPolicy

BACKENDS = ("anthropic", "fake")


def available_backends() -> list[str]:
    return list(BACKENDS)


def make_llm(
    name: str,
    *,
    model: str | None = None,
    fake_script: Path | None = None,
    fake_time_scale: float | None = None,
    record: Path | None = None,
    cache: bool = True,
    retry: RetryPolicy | None = None,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RetryingLLM:
    """The backend ``name`` wrapped in :class:`RetryingLLM` (and in :class:`RecordingLLM` under it when
    ``record`` is given, so only successful responses are recorded).

    ``cache=False`` sends every request with ``cache`` off (no ``cache_control`` breakpoints).
    ``fake_script``: a YAML :class:`FakeScript`, or a ``.jsonl`` recording to replay. ``fake_time_scale``
    defaults to ``AGENTWAVES_FAKE_TIME_SCALE`` (else 0). Raises :class:`UsageError` for an unknown name or
    a bad script, and :class:`~agentwaves.llm.base.FatalLLMError` when the Anthropic key is missing.
    """
    key = name.strip().lower()
    backend: LLM
    if key == "fake":
        scale = _time_scale(fake_time_scale)
        if fake_script is not None and Path(fake_script).suffix == ".jsonl":
            backend = FakeLLM(replay=Path(fake_script), time_scale=scale, sleep=sleep, model=model)
        else:
            script = load_fake_script(Path(fake_script)) if fake_script is not None else None
            backend = FakeLLM(script, time_scale=scale, sleep=sleep, model=model)
    elif key == "anthropic":
        from agentwaves.llm.anthropic import AnthropicLLM

        backend = AnthropicLLM(model)
    else:
        raise UsageError(f"unknown LLM backend {name!r}: choose {' or '.join(BACKENDS)}")
    if not cache:
        backend = NoCacheLLM(backend)
    if record is not None:
        backend = RecordingLLM(backend, Path(record))
    return RetryingLLM(backend, retry or RetryPolicy(), on_retry=on_retry, sleep=sleep)


class NoCacheLLM:
    """Delegates to ``inner`` with every request's ``cache`` turned off (``prompt_cache: false``)."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.model: str = inner.model

    def complete(self, request: Request, ctx: CallContext) -> Response:
        return self.inner.complete(dataclasses.replace(request, cache=False), ctx)


def load_fake_script(path: Path) -> FakeScript:
    """Read and validate a fake script; any problem is a one-line :class:`UsageError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"fake script {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"fake script {path}: invalid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        keys = "plan, plans, tasks, resolver or faults"
        raise UsageError(f"fake script {path}: expected a mapping with {keys}")
    try:
        return FakeScript.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UsageError(f"fake script {path}: {loc}: {first['msg']}{more}") from None


def _time_scale(value: float | None) -> float:
    if value is None:
        raw = os.environ.get("AGENTWAVES_FAKE_TIME_SCALE", "").strip()
        if not raw:
            return 0.0
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"AGENTWAVES_FAKE_TIME_SCALE must be a number (got {raw!r})") from None
    if value < 0:
        raise UsageError(f"the fake time scale must not be negative (got {value:g})")
    return value
