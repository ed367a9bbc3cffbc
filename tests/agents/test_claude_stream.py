"""Reading Claude Code's stream-json lines: rate limits and retries reach the run's event sink."""

from __future__ import annotations

from agentwaves.agents.drivers.claude_stream import ClaudeStream
from agentwaves.agents.loop import Transcript
from agentwaves.redact import Redactor
from tests.agents.events_support import Recorder


def test_rate_limit_events_retries_and_tool_results() -> None:
    events = Recorder()
    stream = ClaudeStream(events, Transcript(None, Redactor()))
    lines = [
        {"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}},
        {"type": "rate_limit_event", "rate_limit_info": {"status": "rejected", "resetsAt": 1}},
        {"type": "system", "subtype": "api_retry", "attempt": 1, "error_status": 429, "retry_delay_ms": 500},
        {"type": "system", "subtype": "api_retry", "attempt": 2, "error_status": 529, "retry_delay_ms": 900},
        {
            "type": "assistant",
            "message": {"content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]},
        },
        {
            "type": "user",
            "message": {"content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": True}]},
        },
    ]
    assert not any(stream(line) for line in lines)
    assert stream({"type": "result", "is_error": False, "total_cost_usd": 0.5}) is True
    assert events.calls == [
        ("rate_limited", "claude-code: rejected"),
        ("retrying", ("rate_limit", 1, 0.5)),
        ("rate_limited", "claude-code: HTTP 429"),
        ("retrying", ("overloaded", 2, 0.9)),
        ("tool", ("Bash", True)),
    ]
    assert stream.cost() == 0.5
