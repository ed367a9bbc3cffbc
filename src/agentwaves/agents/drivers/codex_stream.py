"""Reading ``codex exec --json`` lines into agentwaves' events.

Lines: ``thread.started``, ``turn.started``, ``item.started`` / ``item.updated`` / ``item.completed`` (items
of type ``agent_message``, ``reasoning``, ``command_execution``, ``file_change``, ``mcp_tool_call``,
``web_search``, ``todo_list``, ``error``), then ``turn.completed`` (``usage``: ``input_tokens`` including
``cached_input_tokens``, ``output_tokens``) or ``turn.failed`` (``error.message``); a top-level ``error``
line reports a stream error. The events carry no cost: usage is priced with agentwaves' table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentwaves.agents.backend import AgentEvents
from agentwaves.agents.loop import Transcript
from agentwaves.llm.base import Usage

FINAL = {"turn.completed", "turn.failed"}
RATE_LIMIT_WORDS = ("429", "rate limit", "too many requests", "usage limit")


@dataclass
class CodexStream:
    """Consumes one ``codex exec`` run: reports each item as a ``tool`` event, keeps the transcript."""

    events: AgentEvents
    transcript: Transcript
    usage_data: dict[str, Any] | None = None
    failed: str | None = None  # turn.failed's message
    errors: list[str] = field(default_factory=list)  # error lines and error items
    last_message: str = ""
    reported: set[str] = field(default_factory=set)  # item ids already shown as a tool event
    running: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # started, not completed
    notes: list[str] = field(default_factory=list)  # non-JSON output lines
    rate_limited: bool = False  # an error line said 429: the run's concurrency was lowered
    cwd: str = ""  # the worktree: file_change paths inside it are shown relative to it

    def __call__(self, event: dict[str, Any]) -> bool:
        """Handle one line; True once the turn completed or failed."""
        kind = str(event.get("type") or "")
        self.events.alive()
        if not kind.startswith("item."):  # items are written as the builtin writes its turns
            self.transcript.write(f"codex:{kind}", event)
        if kind.startswith("item."):
            self._item(kind, event.get("item") or {})
        elif kind == "turn.completed":
            self.usage_data = event.get("usage") or {}
        elif kind == "turn.failed":
            self.failed = str((event.get("error") or {}).get("message") or "the turn failed")
        elif kind == "error":
            self._error(str(event.get("message") or ""))
        return kind in FINAL

    def text(self, line: str) -> None:
        self.notes.append(line[:500])
        self.transcript.write("codex:text", line[:2000])

    def close(self) -> None:
        """The process ended: each item that started and never completed (killed, or cut off by a failed
        turn) is its one ``tool`` event, an error."""
        for item_id, (name, args) in self.running.items():
            self.reported.add(item_id)
            self.events.tool_call(name, args, error=True)
        self.running.clear()

    def _error(self, message: str) -> None:
        self.errors.append(message[:500])
        if not self.rate_limited and any(word in message.lower() for word in RATE_LIMIT_WORDS):
            self.rate_limited = True
            self.events.rate_limited(f"codex: {message[:200]}")

    def _item(self, kind: str, item: dict[str, Any]) -> None:
        itype = str(item.get("type") or "")
        item_id = str(item.get("id") or "")
        if itype == "agent_message":
            if kind == "item.completed":
                self.last_message = str(item.get("text") or "")
                self.transcript.write("assistant", [{"type": "text", "text": self.last_message}])
            return
        if itype == "error":
            self._error(str(item.get("message") or ""))
            return
        tool = _tool(itype, item, self.cwd)
        if tool is None:
            if kind == "item.completed":
                self.transcript.write(f"codex:{itype or 'item'}", item)
            return
        failed = item.get("status") == "failed" or (item.get("exit_code") not in (None, 0))
        # one tool event per item, when it completed, with how it ended; while it runs, its lines are
        # signs of life (``alive``) for stuck detection
        if kind == "item.started" and item_id not in self.reported:
            self.running[item_id] = tool
        if kind == "item.completed":
            self.running.pop(item_id, None)
            if item_id not in self.reported:
                self.reported.add(item_id)
                self.events.tool_call(tool[0], tool[1], error=bool(failed))
            output = item.get("aggregated_output") or mcp_result(item) or item.get("status") or ""
            result = str(output)[-4000:]
            record = {"name": tool[0], "input": tool[1], "result": result, "is_error": bool(failed)}
            self.transcript.write("tool", record)

    def usage(self) -> Usage:
        data = self.usage_data or {}
        total = int(data.get("input_tokens") or 0)
        cached = min(total, int(data.get("cached_input_tokens") or 0))
        return Usage(
            input_tokens=total - cached,
            output_tokens=int(data.get("output_tokens") or 0),
            cache_read_input_tokens=cached,
        )


def mcp_result(item: dict[str, Any]) -> str:
    """What an ``mcp_tool_call`` returned: its text content, or its error's message."""
    error = item.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    result = item.get("result")
    content = result.get("content") if isinstance(result, dict) else None
    texts = [str(c.get("text") or "") for c in content or [] if isinstance(c, dict)]
    return "\n".join(t for t in texts if t)


def _tool(itype: str, item: dict[str, Any], cwd: str = "") -> tuple[str, dict[str, Any]] | None:
    """The tool name and arguments an item shows as, or None for items that are not tool calls. Codex
    reports a file_change's paths absolute: those inside ``cwd`` are shown relative to it."""
    if itype == "command_execution":
        return "shell", {"command": str(item.get("command") or "")}
    if itype == "file_change":
        paths = [str(c.get("path") or "") for c in item.get("changes") or [] if isinstance(c, dict)]
        prefix = cwd.rstrip("/") + "/"
        paths = [p[len(prefix) :] if cwd and p.startswith(prefix) else p for p in paths]
        return "apply_patch", {"path": ", ".join(paths)}
    if itype == "mcp_tool_call":
        return f"mcp:{item.get('server')}.{item.get('tool')}", {}
    if itype == "web_search":
        return "web_search", {"pattern": str(item.get("query") or "")}
    return None
