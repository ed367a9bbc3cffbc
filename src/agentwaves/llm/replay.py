"""Record a session's model responses as JSON lines, and answer calls from such a recording.

A recording line is ``{"ctx": {"agent", "task_id", "attempt", "call"}, "response": {...}}``: the call's
context without its hints, and the response exactly as the backend returned it (content, stop reason,
usage, model). Requests, headers and keys are never written. ``FakeLLM(replay=path)`` (or a ``.jsonl``
given as the fake script) answers each call with the response recorded for the same
(agent, task_id, attempt, call), so a real session becomes an offline regression test.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentwaves.errors import UsageError
from agentwaves.llm.base import LLM, CallContext, FatalLLMError, Request, Response

Key = tuple[str, str | None, int, int]


def ctx_key(ctx: CallContext) -> Key:
    return (ctx.agent, ctx.task_id, ctx.attempt, ctx.call)


def ctx_json(ctx: CallContext) -> dict[str, Any]:
    """The context as recorded: everything but the hints."""
    return {"agent": ctx.agent, "task_id": ctx.task_id, "attempt": ctx.attempt, "call": ctx.call}


class RecordingLLM:
    """Passes calls to ``inner`` and appends each successful (context, response) to ``path``."""

    def __init__(self, inner: LLM, path: Path) -> None:
        self.inner = inner
        self.path = Path(path)
        self.name: str = inner.name
        self.model: str = inner.model
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def complete(self, request: Request, ctx: CallContext) -> Response:
        response = self.inner.complete(request, ctx)
        record = {"ctx": ctx_json(ctx), "response": response.model_dump(mode="json")}
        line = json.dumps(record, sort_keys=True)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        return response


class Replayer:
    """The responses of a recording, by call key. Several records of one key are served in order, the
    last repeating. Loading problems raise :class:`UsageError` naming the file and line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._records: dict[Key, list[Response]] = {}
        self._served: dict[Key, int] = {}
        self._lock = threading.Lock()
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(f"replay file {self.path}: {exc.strerror or exc}") from None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                c = rec["ctx"]
                key: Key = (str(c["agent"]), c.get("task_id"), int(c["attempt"]), int(c["call"]))
                response = Response.model_validate(rec["response"])
            except (ValueError, KeyError, TypeError, ValidationError) as exc:
                problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                where = f"replay file {self.path} line {n}"
                raise UsageError(f"{where}: not a recorded call: {problem}") from None
            self._records.setdefault(key, []).append(response)

    def __len__(self) -> int:
        return sum(len(v) for v in self._records.values())

    def response(self, ctx: CallContext) -> Response:
        key = ctx_key(ctx)
        with self._lock:
            records = self._records.get(key)
            if not records:
                raise FatalLLMError(
                    f"replay {self.path.name} has no response for {ctx.agent} call {ctx.call} "
                    f"(task {ctx.task_id}, attempt {ctx.attempt}): the session diverged from the recording"
                )
            i = self._served.get(key, 0)
            self._served[key] = i + 1
            return records[min(i, len(records) - 1)].model_copy(deep=True)
