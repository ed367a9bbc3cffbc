"""The resolver: an agent that removes conflict markers from a merge, keeping both sides' intent."""

from __future__ import annotations

import re
from pathlib import Path

from agentwaves.agents.backend import Resolution
from agentwaves.agents.loop import AgentFailed, Limits, LoopHooks, ToolReply, Transcript, run_loop
from agentwaves.agents.tools import WorktreeTools
from agentwaves.llm.base import LLM, CallContext, ToolUseBlock, Usage
from agentwaves.prompts import render

# ``<<<<<<<`` and ``>>>>>>>`` lines, as run.merge.conflict_markers_left checks: a lone ``=======`` is also
# how Markdown underlines a heading, and never appears in a conflict without the other two
MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.M)


def has_markers(text: str) -> bool:
    return bool(MARKER.search(text))


def remaining_markers(worktree: Path, conflicts: list[str]) -> list[str]:
    """The ``conflicts`` that still have conflict markers in ``worktree``."""
    return [
        p
        for p in conflicts
        if (worktree / p).is_file()
        and has_markers((worktree / p).read_text(encoding="utf-8", errors="replace"))
    ]


def resolve(
    llm: LLM,
    worktree: Path,
    conflicts: list[str],
    *,
    group: str,
    feature: str,
    tools: WorktreeTools,
    limits: Limits,
    hooks: LoopHooks,
    transcript: Transcript,
) -> Resolution:
    """Let the resolver edit the conflicted files in ``worktree``; report what still has markers."""
    contents = {
        p: (worktree / p).read_text(encoding="utf-8", errors="replace")
        for p in conflicts
        if (worktree / p).is_file()
    }

    def handle(use: ToolUseBlock) -> ToolReply:
        out = tools.execute(use.name, use.input)
        data = {"summary": out.summary, "notes": out.notes} if out.finished else {}
        return ToolReply(out.content, out.is_error, out.finished, data)

    listing = "\n".join(f"- {p}" for p in conflicts)
    first = (
        f"Merging group `{group}` conflicted in these files:\n{listing}\n\nResolve them, then call `finish`."
    )
    usage = Usage()
    summary = ""
    try:
        result = run_loop(
            llm,
            system=render("resolver", feature=feature or "(not stated)"),
            first_message=first,
            tools=tools.specs(),
            handle=handle,
            ctx=CallContext(agent="resolver", task_id=group, hints={"group": group, "conflicts": contents}),
            limits=limits,
            hooks=hooks,
            transcript=transcript,
        )
        usage = result.usage
        summary = str(result.finish.data.get("summary") or "")
    except AgentFailed as exc:
        summary = f"resolver failed: {exc}"
    remaining = remaining_markers(worktree, conflicts)
    return Resolution(resolved=not remaining, remaining=remaining, summary=summary, usage=usage)
