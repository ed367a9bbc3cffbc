"""The LLM protocol, its message types and its errors. Nothing here knows any vendor SDK.

Every agent talks to a model through :class:`LLM`. Backends (``anthropic``, ``fake``) are chosen by name
through :mod:`agentwaves.llm.registry`; all of them are wrapped by the retry policy in
:mod:`agentwaves.llm.retry`, so the fake exercises exactly the code paths the real backend does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from agentwaves.errors import AgentwavesError

# --------------------------------------------------------------------------------------------- messages


class TextBlock(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ToolUseBlock(BaseModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ToolResultBlock(BaseModel):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: str
    is_error: bool = False


Block = TextBlock | ToolUseBlock | ToolResultBlock


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: list[Block]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=[TextBlock(text=text)])


class ToolSpec(BaseModel):
    """A tool the model may call. ``input_schema`` is a JSON schema object."""

    name: str
    description: str
    input_schema: dict[str, Any]


class Usage(BaseModel):
    """Token counts of one or more calls, as the Anthropic API reports them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
        )

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


class Response(BaseModel):
    content: list[TextBlock | ToolUseBlock]
    stop_reason: str = "end_turn"
    usage: Usage = Field(default_factory=Usage)
    model: str = ""

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


@dataclass
class CallContext:
    """Who is calling, for accounting, logs and the fake backend's scripts. Real backends ignore it.

    ``agent`` is ``planner``, ``implementer`` or ``resolver``; ``task_id`` is the task (implementer) or
    group (resolver) the call is for; ``attempt`` counts the task's attempts from 1 (resume increments it);
    ``call`` counts the model calls within this attempt from 1. ``hints`` carries structured facts the fake
    backend uses in place of understanding the prompt (the feature text, the task's predicted files, the
    repository's file list); never put secrets in it.
    """

    agent: str
    task_id: str | None = None
    attempt: int = 1
    call: int = 1
    hints: dict[str, Any] = field(default_factory=dict)


@dataclass
class Request:
    """One model call. ``cache`` asks the backend to cache the stable prefix (tools + system) and the
    conversation so far, so the next call of a multi-turn loop reads them from the prompt cache."""

    system: str
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    max_tokens: int = 8192
    cache: bool = True


@runtime_checkable
class LLM(Protocol):
    """A chat model with tools. ``complete`` raises :class:`LLMError` subclasses, never vendor errors."""

    name: str
    model: str

    def complete(self, request: Request, ctx: CallContext) -> Response: ...


# --------------------------------------------------------------------------------------------- errors


class LLMError(AgentwavesError):
    """Base of every error an LLM backend raises.

    It is an :class:`AgentwavesError` (exit code 1), so an error that escapes to the CLI, such as a missing
    API key raised before any work starts, is shown as one line rather than a traceback.
    """


class RetryableError(LLMError):
    """A transient failure: rate limit, overload, 5xx, timeout, connection error.

    ``kind`` is one of ``rate_limit``, ``overloaded``, ``server_error``, ``timeout``, ``connection``;
    ``retry_after`` is the server's hint in seconds, if any.
    """

    def __init__(self, message: str, *, kind: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.task: str | None = None  # set by the retry layer: the task (or agent) whose call failed


class FatalLLMError(LLMError):
    """A failure that retrying cannot fix: bad request, bad key, no permission, spend limit, budget."""


class RetriesExhausted(LLMError):
    """The retry policy gave up; ``last`` is the final transient error."""

    def __init__(self, message: str, last: RetryableError | None = None) -> None:
        super().__init__(message)
        self.last = last
