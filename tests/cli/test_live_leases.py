"""The live display and the plain lines show refused writes."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from agentwaves.ui.live import LiveDisplay
from agentwaves.ui.plain import PlainPrinter


def _ev(type: str, **fields: Any) -> dict[str, Any]:
    return {"ts": "2026-11-22T10:00:00.000Z", "type": type, **fields}


REFUSED = _ev("write_refused", task="t2", path="src/api.py", owner="t1", owner_group="api", at="write")
EVENTS = [
    _ev("run_started", run="r1", branch="agentwaves/r1", schedule="waves", max_agents=4),
    _ev("group_started", group="api", wave=1, base="abc", worktree="/nowhere/api"),
    _ev("group_started", group="web", wave=1, base="abc", worktree="/nowhere/web"),
    _ev("task_started", task="t1", group="api", attempt=1),
    _ev("task_started", task="t2", group="web", attempt=1),
    REFUSED,
    _ev("tool", task="t2", tool="write_file", arg="src/api.py", error=True),  # the tool call that was refused
]


def _frame(display: LiveDisplay) -> str:
    con = Console(record=True, force_terminal=True, width=120, color_system="truecolor")
    con.print(display.render())
    return con.export_text()


def test_live_display_shows_the_refusal_and_plain_lines_name_the_owner() -> None:
    display = LiveDisplay(console=Console(file=io.StringIO()), refresh_per_second=20)
    for e in EVENTS:
        display(e)
    assert "write refused: src/api.py (owner t1)" in _frame(display)
    display(_ev("task_sent_back", task="t2", paths=["src/api.py"]))
    assert "sent back" in _frame(display)
    out = io.StringIO()
    PlainPrinter(out)(REFUSED)
    PlainPrinter(out)(_ev("task_sent_back", task="t2", paths=["src/api.py"]))
    assert out.getvalue().splitlines() == [
        "[10:00:00] task t2: write to src/api.py REFUSED (leased by task t1 in group api)",
        "[10:00:00] task t2 sent back: it wrote src/api.py, leased by another group",
    ]
