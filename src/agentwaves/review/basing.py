"""Why ``land`` cannot fast-forward: the user's branch moved, or the run never started from it.

A run started on a detached HEAD (or on another branch) is based on that commit. When the branch to land
on is not an ancestor of the run, saying "your branch moved" would be false; this says where the run
started instead. The way out is the same: rebase the run onto the branch, or merge it.
"""

from __future__ import annotations

from agentwaves.review.inspect import RunRef
from agentwaves.state.events import read_events


def started_on(ref: RunRef) -> tuple[bool, str | None]:
    """(known, branch): the branch that was checked out when the run started (None: detached HEAD);
    ``known`` is False when the run's events do not say."""
    for event in read_events(ref.run_dir / "events.jsonl"):
        if event.get("type") == "run_started":
            branch = event.get("user_branch")
            return True, str(branch) if branch else None
    return False, None


def not_fast_forward(ref: RunRef, branch: str, head: str) -> str:
    """The message of a ``land`` that cannot fast-forward ``branch`` (at ``head``) to the run."""
    s, rid = ref.state, ref.run_id
    way_out = (
        f"rebase the run with `git rebase {branch} {s.branch} && git switch {branch} && "
        f"agentwaves land {rid}` or merge it with `git merge {s.branch}`"
    )
    known, origin = started_on(ref)
    if known and origin != branch:
        where = "a detached HEAD" if origin is None else f"branch {origin}"
        return (
            f"run {rid} started from commit {s.base[:7]} on {where}, not from {branch} (now {head[:7]}), "
            f"so {branch} cannot fast-forward to it: {way_out}"
        )
    return f"your branch {branch} moved since the run started (base {s.base[:7]}, now {head[:7]}): {way_out}"
