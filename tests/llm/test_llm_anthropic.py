"""The Anthropic backend through the real SDK against a stub Messages API on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest
from llm_support import AGENT_TOOLS, API_KEY, Reply, StubAPI, error_body, message_body

from agentwaves.llm.anthropic import AnthropicLLM
from agentwaves.llm.base import (
    CallContext,
    FatalLLMError,
    Message,
    Request,
    RetryableError,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from agentwaves.llm.registry import make_llm
from agentwaves.llm.retry import RetryingLLM, RetryPolicy

CTX = CallContext(agent="implementer", task_id="t1")


def make(api: StubAPI) -> AnthropicLLM:
    return AnthropicLLM("claude-sonnet-5-5", api_key=API_KEY, base_url=api.url, timeout=5, strict=True)


def conversation() -> list[Message]:
    return [
        Message.user("add a module"),
        Message(
            role="assistant", content=[ToolUseBlock(id="toolu_1", name="read_file", input={"path": "a.py"})]
        ),
        Message(role="user", content=[ToolResultBlock(tool_use_id="toolu_1", content="x = 1\n")]),
    ]


def retrying(api: StubAPI, sleeps: list[float], **policy: Any) -> RetryingLLM:
    return RetryingLLM(make(api), RetryPolicy(**policy), sleep=sleeps.append)


def test_tool_use_round_trip_with_cache_breakpoints(stub_api: StubAPI) -> None:
    tool_use = {
        "type": "tool_use",
        "id": "toolu_9",
        "name": "write_file",
        "input": {"path": "a.py", "content": "y"},
    }
    stub_api.queue(Reply(body=message_body([{"type": "text", "text": "Writing."}, tool_use])))
    resp = make(stub_api).complete(
        Request(system="be brief", messages=conversation(), tools=AGENT_TOOLS), CTX
    )

    assert resp.stop_reason == "tool_use"
    assert resp.text == "Writing."
    assert resp.tool_uses == [
        ToolUseBlock(id="toolu_9", name="write_file", input={"path": "a.py", "content": "y"})
    ]
    assert resp.model == "claude-sonnet-5-5"

    (req,) = stub_api.requests
    body = req["body"]
    assert req["path"] == "/v1/messages"
    assert body["model"] == "claude-sonnet-5-5"
    assert [t["name"] for t in body["tools"]] == [t.name for t in AGENT_TOOLS]
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in t for t in body["tools"][:-1])
    assert body["system"] == [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}]
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in b for m in body["messages"][:-1] for b in m["content"])
    assert body["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "read_file",
        "input": {"path": "a.py"},
    }
    headers = stub_api.headers[0]
    assert API_KEY in (headers.get("x-api-key", ""), headers.get("authorization", "").removeprefix("Bearer "))


def test_no_cache_control_when_caching_is_off(stub_api: StubAPI) -> None:
    make(stub_api).complete(Request(system="s", messages=conversation(), tools=AGENT_TOOLS, cache=False), CTX)
    assert "cache_control" not in str(stub_api.requests[0]["body"])


def test_usage_and_cache_fields_parsed_thinking_ignored(stub_api: StubAPI) -> None:
    content = [{"type": "thinking", "thinking": "hmm", "signature": "sig"}, {"type": "text", "text": "ok"}]
    usage = {"cache_creation_input_tokens": 120, "cache_read_input_tokens": 3000}
    stub_api.queue(Reply(body=message_body(content, **usage)), Reply(body=message_body(None)))
    llm = make(stub_api)
    resp = llm.complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert resp.content == [TextBlock(text="ok")]
    assert resp.usage.model_dump() == {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": 120,
        "cache_read_input_tokens": 3000,
    }
    # fields absent (or null) count as 0
    second = llm.complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert second.usage.cache_read_input_tokens == 0 and second.usage.cache_creation_input_tokens == 0


def test_sdk_retries_are_off(stub_api: StubAPI) -> None:
    stub_api.queue(Reply(529, error_body(529, "overloaded_error", "Overloaded")))
    with pytest.raises(RetryableError) as info:
        make(stub_api).complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert info.value.kind == "overloaded"
    assert len(stub_api.requests) == 1


def test_overloaded_then_success_through_retry_policy(stub_api: StubAPI) -> None:
    stub_api.queue(Reply(529, error_body(529, "overloaded_error", "Overloaded")), Reply())
    sleeps: list[float] = []
    seen: list[tuple[str, int]] = []
    llm = RetryingLLM(
        make(stub_api), RetryPolicy(), on_retry=lambda e, n, w: seen.append((e.kind, n)), sleep=sleeps.append
    )
    resp = llm.complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert resp.text == "hello"
    assert len(stub_api.requests) == 2
    assert seen == [("overloaded", 1)]
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 1.2


def test_rate_limit_honours_retry_after(stub_api: StubAPI) -> None:
    limited = Reply(429, error_body(429, "rate_limit_error", "Too many requests"), {"retry-after": "2"})
    stub_api.queue(limited, Reply())
    sleeps: list[float] = []
    retrying(stub_api, sleeps, jitter=0.25).complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert len(sleeps) == 1 and 2.0 <= sleeps[0] <= 2.5


def test_retry_after_ms_is_preferred(stub_api: StubAPI) -> None:
    headers = {"retry-after": "9", "retry-after-ms": "1500"}
    stub_api.queue(Reply(429, error_body(429, "rate_limit_error", "slow down"), headers))
    with pytest.raises(RetryableError) as info:
        make(stub_api).complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert info.value.kind == "rate_limit" and info.value.retry_after == 1.5


def test_retry_after_beyond_cap_fails_fast(stub_api: StubAPI) -> None:
    limited = Reply(429, error_body(429, "rate_limit_error", "Too many requests"), {"retry-after": "120"})
    stub_api.queue(limited, Reply())
    sleeps: list[float] = []
    with pytest.raises(FatalLLMError, match=r"asked to wait 120s, more than the cap of 60s"):
        retrying(stub_api, sleeps).complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert sleeps == [] and len(stub_api.requests) == 1


def test_bad_key_is_a_clear_fatal_error(stub_api: StubAPI) -> None:
    stub_api.queue(Reply(401, error_body(401, "authentication_error", f"invalid x-api-key {API_KEY}")))
    with pytest.raises(FatalLLMError) as info:
        retrying(stub_api, []).complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert str(info.value) == "the Anthropic API rejected the key (401): check ANTHROPIC_API_KEY"
    assert API_KEY not in str(info.value) and info.value.__cause__ is None
    assert len(stub_api.requests) == 1


@pytest.mark.parametrize(
    ("status", "etype", "message", "code"),
    [
        (429, "rate_limit_error", "monthly usage limit reached", "enforced_spend_limit_reached"),
        (429, "rate_limit_error", "contract limit", "contract_spend_limit_reached"),
        (429, "rate_limit_error", "Your credit balance is too low to access the API", None),
        (400, "billing_error", "billing problem", None),
    ],
)
def test_spend_limit_fails_at_once(
    stub_api: StubAPI, status: int, etype: str, message: str, code: str | None
) -> None:
    stub_api.queue(Reply(status, error_body(status, etype, message, code), {"retry-after": "1"}))
    sleeps: list[float] = []
    with pytest.raises(FatalLLMError, match="spend limit or credit"):
        retrying(stub_api, sleeps).complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert sleeps == [] and len(stub_api.requests) == 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [(500, "server_error"), (502, "server_error"), (503, "server_error"), (408, "timeout")],
)
def test_transient_statuses_are_retryable(stub_api: StubAPI, status: int, kind: str) -> None:
    stub_api.queue(Reply(status, error_body(status, "api_error", "boom")))
    with pytest.raises(RetryableError) as info:
        make(stub_api).complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert info.value.kind == kind


@pytest.mark.parametrize(
    ("status", "words"), [(400, "rejected the request (400)"), (403, "(403)"), (404, "(404)")]
)
def test_client_errors_are_fatal(stub_api: StubAPI, status: int, words: str) -> None:
    stub_api.queue(Reply(status, error_body(status, "invalid_request_error", "nope")))
    with pytest.raises(FatalLLMError, match=words.replace("(", r"\(").replace(")", r"\)")):
        make(stub_api).complete(Request(system="s", messages=[Message.user("hi")]), CTX)


def test_timeout_and_connection_errors(stub_api: StubAPI) -> None:
    stub_api.queue(Reply(delay=1.0))
    slow = AnthropicLLM("m", api_key=API_KEY, base_url=stub_api.url, timeout=0.2)
    with pytest.raises(RetryableError) as info:
        slow.complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert info.value.kind == "timeout"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = AnthropicLLM("m", api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(RetryableError) as info:
        closed.complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert info.value.kind == "connection"


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FatalLLMError) as info:
        AnthropicLLM()
    assert str(info.value) == "ANTHROPIC_API_KEY is not set: export it, or use --llm fake"
    with pytest.raises(FatalLLMError):
        make_llm("anthropic")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "  ")
    with pytest.raises(FatalLLMError):
        make_llm("anthropic")


def test_env_key_base_url_and_model(stub_api: StubAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", stub_api.url)
    monkeypatch.setenv("AGENTWAVES_MODEL", "claude-haiku-4-5")
    llm = make_llm("anthropic", sleep=lambda s: None)
    assert llm.name == "anthropic" and llm.model == "claude-haiku-4-5"
    assert API_KEY not in repr(llm.inner)
    llm.complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert stub_api.requests[0]["body"]["model"] == "claude-haiku-4-5"
    assert make_llm("anthropic", model="claude-opus-5-5").model == "claude-opus-5-5"


def test_registry_imports_the_sdk_only_for_anthropic() -> None:
    code = (
        "import sys; from agentwaves.llm.registry import make_llm; make_llm('fake'); "
        "assert 'anthropic' not in sys.modules and 'agentwaves.llm.anthropic' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_sdk_is_imported_at_the_first_call_not_when_the_backend_is_made(stub_api: StubAPI) -> None:
    """A run starts (and a Ray run's head, which may never call the model, goes on) without the ~3 s
    ``import anthropic``; the first call imports it (every other test here makes its calls that way)."""
    code = (
        "import sys; from agentwaves.llm.registry import make_llm; "
        "llm = make_llm('anthropic', model='claude-sonnet-5-5'); "
        "assert 'anthropic' not in sys.modules, 'imported when the backend was made'"
    )
    env = {"PATH": "/usr/bin:/bin", "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": stub_api.url}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stub_api.queue(Reply(200, message_body([{"type": "text", "text": "hello"}])))
    llm = make(stub_api)
    assert llm._client is None  # not made yet
    reply = llm.complete(Request(system="s", messages=[Message.user("hi")]), CTX)
    assert reply.content[0].text == "hello" and llm._client is not None and len(stub_api.requests) == 1


def test_prompt_cache_off_sends_no_breakpoints(stub_api: StubAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", stub_api.url)
    request = Request(system="s", messages=conversation(), tools=AGENT_TOOLS)
    make_llm("anthropic", sleep=lambda s: None).complete(request, CTX)
    make_llm("anthropic", cache=False, sleep=lambda s: None).complete(request, CTX)
    on, off = (str(r["body"]) for r in stub_api.requests)
    assert "cache_control" in on and "cache_control" not in off
