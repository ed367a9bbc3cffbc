"""Lease checks around one task: the live guard of the builtin tools, and the end-of-task fallback.

The fallback applies to every backend: at the task's end, before its commit, the paths the task changed
(per ``git status`` in its worktree, less what already differed, unchanged since, when the task started:
a sibling's or the setup's files are not the task's writes) that another group leases are put back as
they were at the group's HEAD, and the task is sent back once with the refusal. What it writes there on
its second pass is put back too and never committed: a lease refusal never reaches the merge.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from agentwaves.agents.backend import TaskResult
from agentwaves.git.ops import git, literal_pathspecs, run_git, worktree_changes
from agentwaves.run.context import RunContext
from agentwaves.run.leases.table import Lease, refusal_message, write_guard


def live_guard(ctx: RunContext, task_id: str, group: str) -> Callable[[str], str | None] | None:
    """The ``write_guard`` for the builtin tools and a driver's write hook, or None when live checks are
    off (config ``live_leases: false``, or a backend without them: see :func:`backend_has_live_leases`)."""
    if not ctx.config.live_leases or not backend_has_live_leases(ctx.backend):
        return None
    return write_guard(ctx.leases, task_id, group, lambda path, lease: refused(ctx, task_id, path, lease))


def backend_has_live_leases(backend: object) -> bool:
    """The builtin backend's own file tools check leases as they write, and so does a driver that says
    ``write_hook = True`` (claude-code: a ``PreToolUse`` hook); other agents write through their own
    tools (codex, acp: the end-of-task fallback checks them). Not when the builtin's LLM, or one it wraps
    (``.inner``: retry, recording, no-cache), says ``live_leases = False``."""
    if getattr(backend, "write_hook", False) is True:
        return True
    llm = getattr(backend, "llm", None)
    if llm is None:
        return False
    seen = 0
    while llm is not None and seen < 10:
        if getattr(llm, "live_leases", True) is False:
            return False
        llm, seen = getattr(llm, "inner", None), seen + 1
    return True


def refused(ctx: RunContext, task_id: str, path: str, lease: Lease, *, at: str = "write") -> None:
    """Record and announce one refused write (``at``: ``write`` for the live check, ``end`` for the
    fallback)."""
    with ctx.store.lock:
        ts = ctx.store.state.task(task_id)
        if path not in ts.refused:
            ts.refused.append(path)
        ctx.store.save()
    ctx.events.emit(
        "write_refused", task=task_id, path=path, owner=lease.task, owner_group=lease.group, at=at
    )


Signature = tuple[int, int, int, int] | None  # (mode, size, mtime_ns, inode) of a path; None: absent


def signature(root: Path, path: str) -> Signature:
    try:
        st = os.lstat(root / path)
    except OSError:
        return None
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)


def baseline(worktree: Path) -> dict[str, Signature]:
    """What already differed from HEAD in the worktree as a task starts (path -> its signature): an
    earlier task's leftovers, a running sibling's writes, the files setup or ``copy_files`` made."""
    return {path: signature(worktree, path) for path in worktree_changes(worktree)}


def intrusions(
    ctx: RunContext,
    group: str,
    worktree: Path,
    result: TaskResult,
    live: bool,
    before: dict[str, Signature] | None = None,
) -> list[tuple[str, Lease]]:
    """The paths the task changed that another group leases, with the lease. The changes come
    from ``git status`` in the worktree (the driver's, ``result.changed``, when it took one), less those
    ``before`` holds unchanged (they were there when the task started: not its writes), unless the
    live guard saw every write (it was on and the agent ran no command): then from the task's own
    record. Nothing is asked while no other group leases."""
    if not ctx.leases.others_hold(group):
        return []
    seen_all = live and result.exact
    if seen_all:
        changed = set(result.written)
    else:
        old = before or {}
        # the driver's own listing when it made one as the agent ended (one `git status` fewer a task)
        listed = result.changed if result.changed is not None else worktree_changes(worktree)
        changed = {p for p in listed if p not in old or signature(worktree, p) != old[p]}
    found = []
    for path in sorted(changed):
        lease = ctx.leases.check(group, path)
        if lease is not None:
            found.append((path, lease))
    return found


def put_back(root: Path, paths: list[str], result: TaskResult) -> None:
    """Restore ``paths`` to the worktree's HEAD (delete those HEAD lacks); forget them as written."""
    tracked = {p for p in paths if run_git(root, "cat-file", "-e", f"HEAD:{p}", check=False).returncode == 0}
    keep = [p for p in paths if p in tracked]
    if keep:
        git(root, "checkout", "-q", "HEAD", "--", *literal_pathspecs(keep))
    for p in paths:
        if p not in tracked:
            git(root, "rm", "-q", "--cached", "--ignore-unmatch", "--", *literal_pathspecs([p]))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(root / p)
    gone = set(paths)
    result.written = [p for p in result.written if p not in gone]


def send_back_note(found: list[tuple[str, Lease]]) -> str:
    """What the task is told when it is sent back."""
    lines = [refusal_message(path, lease) for path, lease in found]
    return (
        "# Sent back: writes refused\nYour changes to these files were undone, as another group owns them "
        "in this wave:\n" + "\n".join(f"- {line}" for line in lines) + "\nFinish the task without them."
    )


def run_checked(
    ctx: RunContext,
    task_id: str,
    group: str,
    git_lock: threading.Lock,
    worktree: Path,
    live: bool,
    fresh: bool,
    attempt: Callable[[str], TaskResult],
) -> TaskResult:
    """Run the agent (``attempt(extra_notes)``) and apply the end-of-task check: a task that changed
    paths another group leases gets them put back and is sent back once with the refusal; what it
    writes there again is put back and left out of its handoff (and so of its commit). Only what the
    task changed counts: the worktree's changes from before its start (:func:`baseline`) do not;
    ``fresh`` says there are none (its files are exactly its HEAD): no ``git status`` is taken."""
    with git_lock:
        before = {} if fresh else baseline(worktree)
    outcome = attempt("")
    for last in (False, True):
        found = intrusions(ctx, group, worktree, outcome, live, before)
        if not found:
            return outcome
        with git_lock:
            put_back(worktree, [path for path, _ in found], outcome)
        for path, lease in found:
            refused(ctx, task_id, path, lease, at="end")
        if last:
            gone = {path for path, _ in found}
            outcome.handoff.files = [f for f in outcome.handoff.files if f not in gone]
            if outcome.all_files is not None:
                outcome.all_files = [f for f in outcome.all_files if f not in gone]
            return outcome
        ctx.events.emit("task_sent_back", task=task_id, paths=[path for path, _ in found])
        outcome = attempt(send_back_note(found))
    return outcome
