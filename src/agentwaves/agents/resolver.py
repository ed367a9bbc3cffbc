"""The resolver: an agent that removes conflict markers from a merge, keeping both sides' intent.

Conflict content is read from git objects (the conflicted tree, then the tree of the worktree as git would
commit it), never through the working tree: a conflicted path may be a symlink to ``/proc/self/mem``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from agentwaves.agents.backend import Resolution, conflict_prompt
from agentwaves.agents.loop import AgentFailed, Limits, LoopHooks, ToolReply, Transcript, run_loop
from agentwaves.agents.tools import WorktreeTools
from agentwaves.git.merge import write_tree_from_worktree
from agentwaves.git.ops import GitError, run_git
from agentwaves.llm.base import LLM, CallContext, ToolUseBlock, Usage
from agentwaves.prompts import render

# ``<<<<<<<`` and ``>>>>>>>`` lines, as run.merge.conflict_markers_left checks: a lone ``=======`` is also
# how Markdown underlines a heading, and never appears in a conflict without the other two
MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.M)


def has_markers(text: str) -> bool:
    return bool(MARKER.search(text))


def blob_texts(repo: Path, tree: str, paths: list[str]) -> dict[str, str]:
    """The text of each of ``paths`` in ``tree`` (a blob: file or symlink), read from git's objects."""
    out: dict[str, str] = {}
    for path in paths:
        res = run_git(repo, "cat-file", "blob", f"{tree}:{path}", check=False)
        if res.returncode == 0:
            out[path] = res.stdout.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return out


def remaining_markers(worktree: Path, conflicts: list[str]) -> list[str]:
    """The ``conflicts`` that still have conflict markers in ``worktree``, read from git's objects (the
    worktree's files as git would commit them), never through the working tree; all of them when git
    cannot read the result (e.g. the resolver left a FIFO git cannot add)."""
    try:
        after = blob_texts(worktree, write_tree_from_worktree(worktree), conflicts)
    except GitError:
        return list(conflicts)
    return [p for p in conflicts if has_markers(after.get(p, ""))]


ResolveAttempt = Callable[[], tuple[str, Usage, float | None]]
"""One resolving job of an agent: returns its summary, the usage and the cost it reported (None: priced
by agentwaves' table); raises :class:`AgentFailed` when the agent failed."""


def resolution(worktree: Path, conflicts: list[str], attempt: ResolveAttempt) -> Resolution:
    """Run ``attempt`` and report what still has markers in ``worktree``: what every resolver (the builtin
    and each driver) ends with. A failed agent is a summary (``resolver failed: ...``), not an error: the
    markers left decide."""
    usage: Usage = Usage()
    cost: float | None = None
    try:
        summary, usage, cost = attempt()
    except AgentFailed as exc:
        summary = f"resolver failed: {exc}"
    remaining = remaining_markers(worktree, conflicts)
    return Resolution(not remaining, remaining, summary, usage, cost)


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
    tree: str | None = None,
) -> Resolution:
    """Let the resolver edit the conflicted files in ``worktree``; report what still has markers.

    ``tree`` is the conflicted tree checked out there (default: the worktree's files as git sees them)."""
    try:
        contents = blob_texts(worktree, tree or write_tree_from_worktree(worktree), conflicts)
    except GitError:
        contents = {}

    def handle(use: ToolUseBlock) -> ToolReply:
        out = tools.execute(use.name, use.input)
        data = {"summary": out.summary, "notes": out.notes} if out.finished else {}
        return ToolReply(out.content, out.is_error, out.finished, data)

    first = f"{conflict_prompt(group, conflicts)}, then call `finish`."

    def attempt() -> tuple[str, Usage, float | None]:
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
        return str(result.finish.data.get("summary") or ""), result.usage, None

    return resolution(worktree, conflicts, attempt)
