"""Reading ``codex exec --json`` lines: one ``tool`` event per item, when it completed, with its error
(end to end with the real CLI: test_codex_events)."""

from __future__ import annotations

from agentwaves.agents.drivers.codex_stream import CodexStream
from agentwaves.agents.loop import Transcript
from agentwaves.redact import Redactor
from tests.agents.events_support import Recorder


def command(item_id: str, kind: str, **extra: object) -> dict[str, object]:
    item = {"id": item_id, "type": "command_execution", "command": f"run {item_id}", **extra}
    return {"type": kind, "item": item}


def test_one_tool_event_per_item_at_completion_and_for_one_still_running_at_the_end() -> None:
    events = Recorder()
    stream = CodexStream(events, Transcript(None, Redactor()))
    for line in [
        command("1", "item.started", status="in_progress"),
        command("1", "item.completed", status="failed", exit_code=2),
        command("2", "item.started", status="in_progress"),
        command("2", "item.completed", status="completed", exit_code=0),
        command("3", "item.completed", status="completed", exit_code=0),  # never said it started
        command("4", "item.started", status="in_progress"),  # killed while it ran
    ]:
        stream(line)
    failed, ok = ("tool", ("shell", True)), ("tool", ("shell", False))
    assert events.calls == [failed, ok, ok]
    stream.close()
    stream.close()  # once only
    assert events.calls == [failed, ok, ok, failed]
