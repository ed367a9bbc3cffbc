"""agentwaves' side of the Agent Client Protocol: the client an ACP agent talks to (``acp.Client``).

- ``session/update`` notifications: each ``tool_call`` becomes a ``tool`` event; agent message chunks
  after the last tool call are the final message (the handoff); ``usage_update`` costs and the prompt
  response's token usage are kept; everything goes to the transcript.
- ``session/request_permission``: answered by policy, never by a person. Edits (``edit``, ``delete``,
  ``move``) are allowed when every location they name is inside the worktree (through agentwaves' path
  gate, :func:`agentwaves.sandbox.paths.confine`) and the job may write; reads and searches inside the
  worktree are allowed; everything else (commands, fetches, mode switches, anything outside) is refused.
- Authentication: when ``session/new`` answers "authentication required", the driver picks the first
  ``env_var`` auth method whose variables are set (:func:`env_auth_method`) and calls ``authenticate``.
- ``fs/read_text_file`` and ``fs/write_text_file``: only inside the worktree, through the same gate;
  no writes for a read-only job (the planner). The client offers no terminal.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acp import RequestError
from acp.schema import (
    AllowedOutcome,
    DeniedOutcome,
    PermissionOption,
    ReadTextFileResponse,
    RequestPermissionResponse,
    ToolCallUpdate,
    WriteTextFileResponse,
)

from agentwaves.agents.backend import AgentEvents
from agentwaves.agents.loop import Transcript
from agentwaves.sandbox.paths import PathRefused, confine

EDIT_KINDS = {"edit", "delete", "move"}
READ_KINDS = {"read", "search", "think"}
AUTH_REQUIRED = -32000  # the protocol's error code: the agent needs ``authenticate`` first


def env_auth_method(methods: Any, env: Mapping[str, str]) -> str | None:
    """The first of the agent's ``env_var`` auth methods whose required variables ``env`` sets (an API key
    the agent reads from its environment: what a node has, with no login of its own), else None."""
    for method in methods or []:
        if getattr(method, "type", None) != "env_var":
            continue
        required = [v.name for v in getattr(method, "vars", None) or [] if not v.optional]
        if required and all(env.get(name) for name in required):
            return str(method.id)
    return None


@dataclass
class AcpClient:
    """One session's client. ``last_activity`` is the monotonic time of the agent's last message."""

    worktree: Path
    events: AgentEvents
    transcript: Transcript
    writable: bool = True
    message: list[str] = field(default_factory=list)  # agent text since the last tool call
    written: set[str] = field(default_factory=set)
    denied: list[str] = field(default_factory=list)
    cost_usd: float | None = None  # the session's cumulative cost, if the agent reports it in USD
    tools: int = 0
    last_activity: float = field(default_factory=time.monotonic)
    pending: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # tool calls under way
    _logged: int = 0  # chunks of ``message`` already in the transcript

    # ------------------------------------------------------------------ notifications

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.last_activity = time.monotonic()
        kind = str(getattr(update, "session_update", ""))
        if kind != "agent_message_chunk":  # chunks are written joined, as the builtin writes a message
            self.flush_message()
        if kind not in ("agent_message_chunk", "tool_call_update"):  # a finished call: one "tool" record
            self.transcript.write(
                f"acp:{kind}", update.model_dump(mode="json", exclude_none=True, by_alias=True)
            )
        if kind == "agent_message_chunk":
            text = getattr(update.content, "text", None)
            if isinstance(text, str):
                self.message.append(text)
        elif kind == "tool_call":
            self.tools += 1
            self.message.clear()
            self._logged = 0
            name, args = describe(update)
            self.pending[update.tool_call_id] = (name, args)
            self.events.tool_call(name, args, error=update.status == "failed")
        elif kind == "tool_call_update" and update.status in ("completed", "failed"):
            name, args = self.pending.pop(update.tool_call_id, ("?", {}))
            texts = [
                str(getattr(c.content, "text", "")) for c in update.content or [] if hasattr(c, "content")
            ]
            error = update.status == "failed"
            record = {"name": name, "input": args, "result": "\n".join(texts)[-4000:], "is_error": error}
            self.transcript.write("tool", record)
            self.events.alive()
        elif kind == "usage_update":
            cost = getattr(update, "cost", None)
            if cost is not None and str(cost.currency).upper() == "USD":
                self.cost_usd = float(cost.amount)
            self.events.alive()
        else:
            self.events.alive()

    def finish_pending(self) -> None:
        """Once the connection is closed: a tool call whose completion never arrived (the agent ended, or
        its update came after the turn's answer) still gets its ``tool`` record in the transcript."""
        for name, args in self.pending.values():
            self.transcript.write("tool", {"name": name, "input": args, "result": "", "is_error": False})
        self.pending.clear()

    # ------------------------------------------------------------------ requests

    async def request_permission(
        self, session_id: str, tool_call: ToolCallUpdate, options: list[PermissionOption], **kwargs: Any
    ) -> RequestPermissionResponse:
        self.last_activity = time.monotonic()
        allow, why = self.allowed(tool_call)
        title = tool_call.title or tool_call.kind or "?"
        self.transcript.write("acp:permission", {"tool": title, "allowed": allow, "why": why})
        if not allow:
            self.denied.append(f"{title}: {why}")
        wanted = ("allow_once", "allow_always") if allow else ("reject_once", "reject_always")
        for kind in wanted:
            option = next((o for o in options if o.kind == kind), None)
            if option is not None:
                return RequestPermissionResponse(
                    outcome=AllowedOutcome(outcome="selected", option_id=option.option_id)
                )
        return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))

    def allowed(self, tool_call: ToolCallUpdate) -> tuple[bool, str]:
        """The policy: (allowed, why)."""
        kind = tool_call.kind or "other"
        paths = [loc.path for loc in tool_call.locations or []]
        if kind in EDIT_KINDS:
            if not self.writable:
                return False, "this job is read-only"
            if not paths:
                return False, "an edit that names no file"
        elif kind not in READ_KINDS:
            return False, f"{kind} is not allowed: only edits and reads inside the worktree are"
        for path in paths:
            try:
                self.confined(path, write=kind in EDIT_KINDS)
            except PathRefused as exc:
                return False, str(exc)
        return True, "inside the worktree"

    async def read_text_file(
        self, session_id: str, path: str, line: int | None = None, limit: int | None = None, **kwargs: Any
    ) -> ReadTextFileResponse:
        self.last_activity = time.monotonic()
        target = self._gate(path, write=False)
        try:
            text = target.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise RequestError.resource_not_found(path) from exc
        if line is not None or limit is not None:
            lines = text.splitlines(keepends=True)
            start = max(0, (line or 1) - 1)
            text = "".join(lines[start : start + limit if limit is not None else None])
        return ReadTextFileResponse(content=text)

    async def write_text_file(
        self, session_id: str, path: str, content: str, **kwargs: Any
    ) -> WriteTextFileResponse | None:
        self.last_activity = time.monotonic()
        if not self.writable:
            raise RequestError.invalid_params({"path": path, "reason": "this job is read-only"})
        target = self._gate(path, write=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        self.written.add(target.relative_to(self.worktree.resolve()).as_posix())
        return WriteTextFileResponse()

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(method)

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None

    # ------------------------------------------------------------------ the path gate

    def confined(self, path: str, *, write: bool) -> Path:
        """``path`` (absolute, as ACP sends it, or relative to the worktree) through the path gate."""
        root = self.worktree.resolve()
        absolute = Path(os.path.normpath(path if os.path.isabs(path) else root / path))
        if absolute == root:
            return root
        if not absolute.is_relative_to(root):
            raise PathRefused(f"{path}: outside the worktree")
        return confine(root, absolute.relative_to(root).as_posix(), write=write)

    def _gate(self, path: str, *, write: bool) -> Path:
        try:
            return self.confined(path, write=write)
        except PathRefused as exc:
            self.denied.append(str(exc))
            self.transcript.write("acp:refused", str(exc))
            raise RequestError.invalid_params({"path": path, "reason": str(exc)}) from None

    def final_message(self) -> str:
        self.flush_message()
        return "".join(self.message).strip()

    def flush_message(self) -> None:
        """Write the agent's text since the last write as one ``assistant`` message in the transcript."""
        text = "".join(self.message[self._logged :])
        self._logged = len(self.message)
        if text.strip():
            self.transcript.write("assistant", [{"type": "text", "text": text}])


def describe(update: Any) -> tuple[str, dict[str, Any]]:
    """A tool call as a ``tool`` event: its kind (or title) and a brief argument."""
    kind = str(update.kind or "other")
    paths = [loc.path for loc in update.locations or []]
    if paths:
        return kind, {"path": ", ".join(paths)}
    return kind, {"command": str(update.title or "")}
