"""What ``execute`` checks about the repository's newest run before it starts another one.

A failed, stopped or interrupted run holds finished work that ``resume`` keeps; starting over silently
would redo it (with a real model, pay for it twice). So ``execute`` refuses (exit 2) with the exact
``resume`` command unless ``--new`` is given. A run that finished but is not landed gets a one-line
notice, since starting another one is often a mistake then too; so does a detached HEAD (which commit
the run starts from).
"""

from __future__ import annotations

from pathlib import Path

from agentwaves.errors import AgentwavesError, UsageError
from agentwaves.git.ops import current_branch, git
from agentwaves.review.inspect import RunRef, effective_state, is_live, read_landed, state_dir_of
from agentwaves.state.store import list_runs, read_state, runs_dir

RESUMABLE = ("failed", "stopped", "interrupted")


def check_before_execute(repo: Path, new: bool) -> list[str]:
    """Raise :class:`UsageError` if the newest run should be resumed instead (unless ``new``); return the
    notices to print first: a detached HEAD (the commit the run starts from), the newest run finished
    but not landed."""
    try:
        root, state_dir = state_dir_of(repo)
    except AgentwavesError:
        return []  # not a repository: start_run says so
    notices = [n for n in (_detached(root), _previous_run(root, state_dir, new)) if n]
    return notices


def _detached(root: Path) -> str | None:
    if current_branch(root) is not None:
        return None
    head = git(root, "log", "-1", "--format=%h %s", check=False)
    if not head:
        return None  # no commit yet: start_run says so
    return (
        f"note: HEAD is detached: the run starts from commit {head}; to land it later, switch to the "
        "branch to land on (e.g. `git switch main`)"
    )


def _previous_run(root: Path, state_dir: Path, new: bool) -> str | None:
    runs = list_runs(state_dir)
    if not runs:
        return None
    run_dir = runs_dir(state_dir) / runs[-1]
    try:
        ref = RunRef(root, state_dir, run_dir, read_state(run_dir))
    except AgentwavesError:
        return None
    rid, state = ref.run_id, effective_state(ref.state, is_live(ref))
    if state in RESUMABLE and not new:
        done = sum(t.state == "done" for t in ref.state.tasks())
        raise UsageError(
            f"the last run {rid} is {state} ({done}/{len(ref.state.tasks())} tasks done): continue it with "
            f"`agentwaves resume {rid}`, or start over with `agentwaves execute --new`"
        )
    if state == "done" and read_landed(run_dir) is None:
        return f"note: run {rid} finished but is not landed (`agentwaves land {rid}`); starting a new run"
    return None
