"""Reading Claude Code's ``--output-format stream-json --verbose`` lines into agentwaves' events.

Lines: ``system`` (``init``: model, tools; ``api_retry``: a retried API call), ``assistant`` (text and
``tool_use`` blocks), ``user`` (``tool_result`` blocks), ``stream_event`` (partial messages: only signs of
life), ``rate_limit_event`` and finally ``result`` (``usage``, ``total_cost_usd``, ``is_error``,
``num_turns``, ``permission_denials``, ``structured_output``). Usage is taken from ``result`` only: the
assistant lines carry placeholder counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentwaves.agents.backend import AgentEvents
from agentwaves.agents.loop import Transcript
from agentwaves.llm.base import Usage

RETRY_KINDS = {429: "rate_limit", 529: "overloaded"}


@dataclass
class ClaudeStream:
    """Consumes one run's events: reports progress through ``events``, keeps the transcript."""

    events: AgentEvents
    transcript: Transcript
    model: str = ""
    result: dict[str, Any] | None = None
    last_text: str = ""
    tools_used: int = 0
    pending: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # non-JSON output lines

    def __call__(self, event: dict[str, Any]) -> bool:
        """Handle one line; True once the final ``result`` arrived."""
        kind = event.get("type")
        self.events.alive()
        if kind == "stream_event":
            return False
        if kind not in ("assistant", "user"):  # those two are written as the builtin writes them
            self.transcript.write(f"claude:{kind}", _trim(event))
        if kind == "system":
            self._system(event)
        elif kind == "assistant":
            self._assistant(event.get("message") or {})
        elif kind == "user":
            self._tool_results(event.get("message") or {})
        elif kind == "rate_limit_event":
            info = event.get("rate_limit_info") or {}
            status = str(info.get("status") or "")
            if status and status != "allowed":
                self.events.rate_limited(f"claude-code: {status}")
        elif kind == "result":
            self.result = event
            return True
        return False

    def text(self, line: str) -> None:
        self.notes.append(line[:500])
        self.transcript.write("claude:text", line[:2000])

    def _system(self, event: dict[str, Any]) -> None:
        if event.get("subtype") == "init":
            self.model = str(event.get("model") or self.model)
        elif event.get("subtype") == "api_retry":
            status = event.get("error_status")
            kind = RETRY_KINDS.get(status, str(event.get("error") or "api_error")) if status else "api_error"
            wait = float(event.get("retry_delay_ms") or 0) / 1000
            self.events.retrying(kind, int(event.get("attempt") or 0), wait)
            if status == 429:
                self.events.rate_limited("claude-code: HTTP 429")

    def _assistant(self, message: dict[str, Any]) -> None:
        blocks = [b for b in message.get("content") or [] if isinstance(b, dict)]
        self.transcript.write("assistant", [b for b in blocks if b.get("type") in ("text", "tool_use")])
        for block in blocks:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and str(block.get("text") or "").strip():
                self.last_text = str(block["text"])
            elif block.get("type") == "tool_use":
                self.pending[str(block.get("id"))] = (str(block.get("name")), dict(block.get("input") or {}))

    def _tool_results(self, message: dict[str, Any]) -> None:
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            name, args = self.pending.pop(str(block.get("tool_use_id")), ("?", {}))
            self.tools_used += 1
            error = bool(block.get("is_error"))
            result = block.get("content")
            if isinstance(result, list):
                result = "\n".join(str(b.get("text", "")) for b in result if isinstance(b, dict))
            record = {"name": name, "input": args, "result": str(result or "")[:4000], "is_error": error}
            self.transcript.write("tool", record)
            self.events.tool_call(name, args, error)

    # ------------------------------------------------------------------ the outcome

    def usage(self) -> Usage:
        """Per model (``modelUsage``, what the cost is computed from) summed, else ``usage``."""
        result = self.result or {}
        per_model = result.get("modelUsage")
        if isinstance(per_model, dict) and per_model:
            keys = {"input_tokens": "inputTokens", "output_tokens": "outputTokens"}
            keys |= {"cache_creation_input_tokens": "cacheCreationInputTokens"}
            keys |= {"cache_read_input_tokens": "cacheReadInputTokens"}
            models = [m for m in per_model.values() if isinstance(m, dict)]
            return Usage(**{k: sum(int(m.get(v) or 0) for m in models) for k, v in keys.items()})
        raw = result.get("usage") or {}
        fields = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        return Usage(**{k: int(raw.get(k) or 0) for k in fields})

    def cost(self) -> float | None:
        value = (self.result or {}).get("total_cost_usd")
        return float(value) if isinstance(value, int | float) else None

    def answer(self) -> object:
        """The structured output if any, else the final text."""
        result = self.result or {}
        if result.get("structured_output") is not None:
            return result["structured_output"]
        return str(result.get("result") or self.last_text or "")


def _trim(event: dict[str, Any]) -> dict[str, Any]:
    """The event without the bulky parts that repeat (init's tool and command lists)."""
    if event.get("type") == "system" and event.get("subtype") == "init":
        keep = ("subtype", "cwd", "model", "permissionMode", "claude_code_version", "tools")
        return {"type": "system", **{k: event.get(k) for k in keep if k in event}}
    return event
