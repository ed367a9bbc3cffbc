"""The Anthropic backend: the official ``anthropic`` SDK, its errors mapped to ours, prompt caching on.

Only :mod:`agentwaves.llm.registry` imports this module, and only when the ``anthropic`` backend is
chosen. The SDK's own retries are off (``max_retries=0``): :class:`~agentwaves.llm.retry.RetryingLLM`
is the one policy that retries. The SDK is imported at the first call, not when the backend is made
(``import anthropic`` takes about 3 CPU-seconds here): a run starts, and a Ray run's head, which only
calls the model to resolve a conflict, may never need it.
"""

from __future__ import annotations

import email.utils
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agentwaves.llm.base import (
    CallContext,
    FatalLLMError,
    LLMError,
    Message,
    Request,
    Response,
    RetryableError,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from agentwaves.llm.usage import DEFAULT_MODEL

if TYPE_CHECKING:
    import anthropic

MISSING_KEY = "ANTHROPIC_API_KEY is not set: export it, or use --llm fake"
_EPHEMERAL = {"type": "ephemeral"}
_SPEND_WORDS = ("spend", "billing", "credit")


class AnthropicLLM:
    """Claude through the Messages API. Honours ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL``.

    ``client_kwargs`` are passed to ``anthropic.Anthropic`` (tests pass ``_strict_response_validation``);
    ``strict=True`` is a shorthand for that. A missing key raises :class:`FatalLLMError` here, before any
    work starts.
    """

    name = "anthropic"

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 600.0,
        strict: bool = False,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.model: str = model or os.environ.get("AGENTWAVES_MODEL") or DEFAULT_MODEL
        key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY", "")
        if not key.strip():
            raise FatalLLMError(MISSING_KEY, exit_code=2)  # bad input: exit 2, like every set-up error
        self._key = key
        # An explicit timeout also stops the SDK refusing non-streaming calls with a large max_tokens.
        kwargs: dict[str, Any] = {"api_key": key, "max_retries": 0, "timeout": timeout}
        url = base_url or os.environ.get("ANTHROPIC_BASE_URL")
        if url:
            kwargs["base_url"] = url
        if strict:
            kwargs["_strict_response_validation"] = True
        kwargs.update(client_kwargs or {})
        self._client_kwargs = kwargs
        self._client: anthropic.Anthropic | None = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"AnthropicLLM(model={self.model!r})"

    def client(self) -> anthropic.Anthropic:
        """The SDK's client, made (and the SDK imported) at the first call; one for every thread."""
        with self._client_lock:
            if self._client is None:
                self._client = _sdk().Anthropic(**self._client_kwargs)
            return self._client

    def complete(self, request: Request, ctx: CallContext) -> Response:
        params = build_params(self.model, request)
        client = self.client()
        try:
            msg = client.messages.create(**params)
        except _sdk().AnthropicError as exc:
            raise map_error(exc, self.model, self._key) from None
        return parse_message(msg)


def _sdk() -> Any:
    import anthropic

    return anthropic


# --------------------------------------------------------------------------------------------- request


def build_params(model: str, request: Request) -> dict[str, Any]:
    """The ``messages.create`` arguments. With ``request.cache``, breakpoints go on the last tool, the
    system prompt and the last content block of the last message (three of the four allowed)."""
    cache = request.cache
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": [_message(m) for m in request.messages],
    }
    if request.system:
        block: dict[str, Any] = {"type": "text", "text": request.system}
        if cache:
            block["cache_control"] = dict(_EPHEMERAL)
        params["system"] = [block]
    if request.tools:
        tools: list[dict[str, Any]] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in request.tools
        ]
        if cache:
            tools[-1]["cache_control"] = dict(_EPHEMERAL)
        params["tools"] = tools
    if cache and params["messages"] and params["messages"][-1]["content"]:
        params["messages"][-1]["content"][-1]["cache_control"] = dict(_EPHEMERAL)
    return params


def _message(m: Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    for b in m.content:
        if isinstance(b, TextBlock):
            if b.text:  # the API rejects empty text blocks
                blocks.append({"type": "text", "text": b.text})
        elif isinstance(b, ToolUseBlock):
            blocks.append({"type": "tool_use", "id": b.id, "name": b.name, "input": b.input})
        elif isinstance(b, ToolResultBlock):
            result = {"type": "tool_result", "tool_use_id": b.tool_use_id, "content": b.content}
            blocks.append({**result, "is_error": b.is_error})
    if not blocks:
        blocks.append({"type": "text", "text": "(empty)"})
    return {"role": m.role, "content": blocks}


# -------------------------------------------------------------------------------------------- response


def parse_message(msg: Any) -> Response:
    """Our :class:`Response` from the SDK's ``Message``: text and tool_use kept, thinking etc. dropped."""
    content: list[TextBlock | ToolUseBlock] = []
    for b in msg.content:
        kind = getattr(b, "type", None)
        if kind == "text":
            content.append(TextBlock(text=b.text))
        elif kind == "tool_use":
            content.append(ToolUseBlock(id=b.id, name=b.name, input=dict(b.input or {})))
    u = msg.usage
    usage = Usage(
        input_tokens=u.input_tokens or 0,
        output_tokens=u.output_tokens or 0,
        cache_creation_input_tokens=getattr(u, "cache_creation_input_tokens", None) or 0,
        cache_read_input_tokens=getattr(u, "cache_read_input_tokens", None) or 0,
    )
    return Response(content=content, stop_reason=msg.stop_reason or "end_turn", usage=usage, model=msg.model)


# ---------------------------------------------------------------------------------------------- errors


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date), in seconds; None if absent."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else max(0.0, email.utils.mktime_tz(parsed) - time.time())


def _is_spend_limit(exc: anthropic.APIStatusError) -> bool:
    sdk = _sdk()
    spend_classes = tuple(
        c
        for n in ("EnforcedSpendLimitReachedError", "ContractSpendLimitReachedError")
        if isinstance(c := getattr(sdk, n, None), type)
    )
    if spend_classes and isinstance(exc, spend_classes):
        return True
    code = str(getattr(exc, "error_code", None) or "")
    etype = str(getattr(exc, "type", None) or "")
    text = f"{code} {etype} {getattr(exc, 'api_message', None) or ''}".lower()
    return etype == "billing_error" or any(w in text for w in _SPEND_WORDS)


def map_error(exc: anthropic.AnthropicError, model: str, key: str = "") -> LLMError:
    """Our error for an SDK error: transient ones are :class:`RetryableError`, the rest fatal."""

    def clean(text: object) -> str:
        s = " ".join(str(text or "").split())[:300]
        return s.replace(key, "***") if key else s

    sdk = _sdk()
    if isinstance(exc, sdk.APITimeoutError):
        return RetryableError("timeout: the Anthropic API did not answer in time", kind="timeout")
    if isinstance(exc, sdk.APIConnectionError):
        return RetryableError(f"connection error: {clean(exc.__cause__ or exc)}", kind="connection")
    if not isinstance(exc, sdk.APIStatusError):
        return FatalLLMError(f"the Anthropic client failed: {clean(exc)}")
    status = exc.status_code
    detail = clean(getattr(exc, "api_message", None) or exc.message)
    if 400 <= status < 500 and status != 401 and _is_spend_limit(exc):
        return FatalLLMError(f"the Anthropic spend limit or credit is exhausted ({status}): {detail}")
    wait = retry_after_seconds(exc.response.headers)
    if status == 429:
        return RetryableError("rate limited (429)", kind="rate_limit", retry_after=wait)
    if status == 529:
        return RetryableError("overloaded (529)", kind="overloaded", retry_after=wait)
    if status >= 500 or status == 409:
        return RetryableError(f"server error ({status})", kind="server_error")
    if status == 408:
        return RetryableError("timeout (408)", kind="timeout")
    if status == 401:
        return FatalLLMError("the Anthropic API rejected the key (401): check ANTHROPIC_API_KEY")
    if status == 403:
        return FatalLLMError(f"the Anthropic API denied permission (403): {detail}")
    if status == 404:
        return FatalLLMError(f"the Anthropic API found no such resource (404) for model {model!r}: {detail}")
    return FatalLLMError(f"the Anthropic API rejected the request ({status}): {detail}")
