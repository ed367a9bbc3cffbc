"""The implementer: one agent, one task, one worktree, confined tools, a handoff at the end."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentwaves.agents.loop import (
    AgentFailed,
    Limits,
    LoopHooks,
    ToolReply,
    Transcript,
    run_loop,
)
from agentwaves.agents.records import Handoff, bounded_handoff
from agentwaves.agents.tools import WorktreeTools
from agentwaves.llm.base import LLM, CallContext, ToolUseBlock, Usage
from agentwaves.plan.model import Task
from agentwaves.prompts import render

_GLOB = re.compile(r"[*?\[]")


def concrete_paths(patterns: list[str], name: str) -> list[str]:
    """Turn predicted-file patterns into file paths an agent can write: directories and globs get a file
    named after the task under their fixed prefix (``src/csv/**`` → ``src/csv/<name>.py``)."""
    out: list[str] = []
    stem = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_").lower() or "task"
    for pattern in patterns:
        if pattern.endswith("/"):
            path = f"{pattern}{stem}.py"
        elif _GLOB.search(pattern):
            prefix = pattern[: _GLOB.search(pattern).start()]  # type: ignore[union-attr]
            prefix = prefix[: prefix.rfind("/") + 1]
            ext = pattern.rsplit(".", 1)[-1] if re.search(r"\*\.[A-Za-z0-9]+$", pattern) else "py"
            path = f"{prefix}{stem}.{ext}"
        else:
            path = pattern
        if path not in out:
            out.append(path)
    return out


@dataclass
class TaskOutcome:
    handoff: Handoff
    usage: Usage
    turns: int
    all_files: list[str] | None = None  # every file the task changed (the handoff names the first ones)


def task_message(task: Task, handoffs: list[Handoff], wave_notes: str) -> str:
    parts = [f"# Your task: {task.id}: {task.title}", "", task.effective_prompt.strip()]
    if task.files:
        parts += ["", "Files this task is expected to write:", *[f"- {f}" for f in task.files]]
    if task.resources:
        parts += ["", "Shared resources it uses: " + ", ".join(task.resources)]
    if handoffs:
        parts += ["", "# Handoffs from the tasks this one depends on"]
        for h in handoffs:
            parts += ["", f"## {h.task}", h.summary.strip()]
            if h.notes.strip():
                parts.append(f"Notes: {h.notes.strip()}")
            if h.files:
                more = h.files_total - len(h.files)
                parts.append("Files: " + ", ".join(h.files) + (f" (and {more} more)" if more > 0 else ""))
    if wave_notes.strip():
        parts += ["", "# What earlier waves did", wave_notes.strip()]
    return "\n".join(parts)


def implement(
    llm: LLM,
    task: Task,
    tools: WorktreeTools,
    *,
    feature: str,
    repo_map: str,
    handoffs: list[Handoff],
    wave_notes: str,
    attempt: int,
    limits: Limits,
    hooks: LoopHooks,
    transcript: Transcript,
    extra_hints: dict[str, object] | None = None,
) -> TaskOutcome:
    """Run the implementer on ``task`` until it calls ``finish``; raise :class:`AgentFailed` otherwise.

    ``extra_hints`` (e.g. ``{"repair": 1}``) reach the fake backend, which can script such runs apart."""

    def handle(use: ToolUseBlock) -> ToolReply:
        out = tools.execute(use.name, use.input)
        data = {"summary": out.summary, "notes": out.notes} if out.finished else {}
        return ToolReply(out.content, out.is_error, out.finished, data)

    ctx = CallContext(
        agent="implementer",
        task_id=task.id,
        attempt=attempt,
        hints={
            "task": {
                "id": task.id,
                "title": task.title,
                "prompt": task.effective_prompt,
                "files": list(task.files),
                "estimate": task.estimate,
            },
            "files": concrete_paths(task.files, task.id),
            **(extra_hints or {}),
        },
    )
    result = run_loop(
        llm,
        system=render("implementer", feature=feature or "(not stated)", repo_map=repo_map),
        first_message=task_message(task, handoffs, wave_notes),
        tools=tools.specs(),
        handle=handle,
        ctx=ctx,
        limits=limits,
        hooks=hooks,
        transcript=transcript,
    )
    summary = str(result.finish.data.get("summary") or "").strip()
    if not summary:
        raise AgentFailed("the agent finished without a summary")
    # without ``run`` the file tools saw every write: no scan of the whole worktree
    changed = (tools.changed_paths() if tools.ran_command else set()) | tools.written
    notes = str(result.finish.data.get("notes") or "")
    handoff, files = bounded_handoff(task.id, summary, notes, changed)
    return TaskOutcome(handoff=handoff, usage=result.usage, turns=result.turns, all_files=files)
