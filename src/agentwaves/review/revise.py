"""``agentwaves revise``, the request: check it against the run and record it, before the run resumes.

:func:`request_revision` records the comment (``TaskState.revisions``, pending) and a
:class:`~agentwaves.state.feedback.Rebuild` from the task's wave; the resumed run then carries it out
(:mod:`agentwaves.run.feedback.revise`).
"""

from __future__ import annotations

from pathlib import Path

from agentwaves.errors import UsageError
from agentwaves.git.ops import branch_exists
from agentwaves.review.inspect import is_live, open_run, read_landed
from agentwaves.state.feedback import Rebuild, Revision
from agentwaves.state.store import RepoLock, RunState, StateStore, now_iso

MAX_COMMENT = 20_000


def _targets(state: RunState, task: str | None, wave: int | None) -> list[tuple[int, str, str]]:
    """(wave, group, task) of each task to revise."""
    if (task is None) == (wave is None):
        raise UsageError("give --task T or --wave N (one of them)")
    out = []
    for w in state.waves:
        for g in w.groups:
            kinds = [t.kind for t in g.tasks]
            if task is not None:
                out += [(w.index, g.name, t.id) for t in g.tasks if t.id == task]
            elif w.index == wave and "gate" not in kinds and g.tasks:
                out.append((w.index, g.name, g.tasks[-1].id))
    if task is not None and not out:
        raise UsageError(f"run {state.run_id} has no task {task!r}")
    if wave is not None and not out:
        raise UsageError(f"run {state.run_id} has no wave {wave} with tasks to revise")
    return out


def request_revision(repo: Path, run_id: str | None, task: str | None, wave: int | None, comment: str) -> str:
    """Record the revision of ``task`` (or of each group's last task of ``wave``); returns the run id."""
    comment = comment.strip()
    if not comment:
        raise UsageError("the comment is empty: say what to change")
    if len(comment) > MAX_COMMENT:
        raise UsageError(f"the comment is longer than {MAX_COMMENT} characters")
    ref = open_run(repo, run_id)
    state = ref.state
    if read_landed(ref.run_dir) is not None:
        raise UsageError(f"run {state.run_id} is landed: revise works before `land` only")
    if is_live(ref):
        raise UsageError(f"run {state.run_id} is executing: wait for it to finish, then revise")
    lock = RepoLock(ref.state_dir)
    lock.acquire(state.run_id)
    try:
        store = StateStore.load(ref.run_dir)
        state = store.state
        targets = _targets(state, task, wave)
        for w, g, t in targets:
            ts = state.task(t)
            if ts.kind == "gate":
                raise UsageError(f"{t} is a gate: revise a task instead")
            if ts.state != "done" or state.wave(w).state != "done":
                raise UsageError(f"task {t} is not committed yet: resume the run first")
            branch = state.group(g).branch
            if not branch or not branch_exists(ref.root, branch):
                raise UsageError(f"the branch of group {g} is gone (was the run cleaned?): cannot revise {t}")
        first = min(w for w, _, _ in targets)
        if state.rebuild is not None:
            first = min(first, state.rebuild.from_wave)
        parent = state.base if first == 1 else state.wave(first - 1).commit
        if not parent:
            raise UsageError(f"wave {first - 1} is not committed: resume the run first")
        for _, _, t in targets:
            ts = state.task(t)
            ts.revisions.append(Revision(n=len(ts.revisions) + 1, comment=comment, requested=now_iso()))
        reason = f"revise {', '.join(t for _, _, t in targets)}: {comment.splitlines()[0][:80]}"
        state.rebuild = Rebuild(from_wave=first, parent=parent, reason=reason)
        state.state = "pending"
        store.save()
        return state.run_id
    finally:
        lock.release()
