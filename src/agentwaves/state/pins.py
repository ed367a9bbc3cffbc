"""Refs that keep every object a run relies on alive: ``refs/agentwaves/<run-id>/...``.

``state.json`` records commits: the run's base, each task's commit, each group's base and head, each wave's
commit. A commit that only ``state.json`` knows about is unreachable for git, and ``git gc --prune=now``
(or a user deleting a branch, or ``clean --force``) would take it. So before each save of the state, every
recorded commit gets a ref (one per commit: the first of these names that records it), and the refs stay
until the run is cleaned:

    refs/agentwaves/<run>/base               the commit the run started from
    refs/agentwaves/<run>/task/<id>          task id's commit
    refs/agentwaves/<run>/wave/<n>           wave n's commit
    refs/agentwaves/<run>/group/<g>          group g's head      refs/agentwaves/<run>/group-base/<g>

One ``git update-ref --stdin`` per save that recorded a new commit; nothing when nothing changed.
"""

from __future__ import annotations

from pathlib import Path

from agentwaves.git.ops import git, run_git
from agentwaves.state.store import RunState

PIN_PREFIX = "refs/agentwaves/"


def pin_prefix(run_id: str) -> str:
    return f"{PIN_PREFIX}{run_id}/"


def wanted_pins(state: RunState) -> dict[str, str]:
    """ref -> commit for every commit ``state`` records, one ref per commit: a group's head that is its
    last task's commit, or a base that is the run's, is pinned once (one ``update-ref`` fewer per task)."""
    pre = pin_prefix(state.run_id)
    refs = [(f"{pre}base", state.base)]
    for w in state.waves:
        refs += [(f"{pre}task/{t.id}", t.commit) for g in w.groups for t in g.tasks if t.commit]
    for w in state.waves:
        if w.commit:
            refs.append((f"{pre}wave/{w.index}", w.commit))
        for g in w.groups:
            if g.head:
                refs.append((f"{pre}group/{g.name}", g.head))
            if g.base:
                refs.append((f"{pre}group-base/{g.name}", g.base))
    out: dict[str, str] = {}
    pinned: set[str] = set()
    for ref, sha in refs:
        if sha not in pinned:
            out[ref] = sha
            pinned.add(sha)
    return out


class Pins:
    """Keeps ``refs/agentwaves/<run>/`` in step with a run's state (call :meth:`sync` before each save)."""

    def __init__(self, repo: Path, run_id: str) -> None:
        self.repo = repo
        self.run_id = run_id
        self.current = read_pins(repo, run_id)

    def sync(self, state: RunState) -> None:
        changes = {r: s for r, s in wanted_pins(state).items() if self.current.get(r) != s}
        if not changes:
            return
        lines = "".join(f"update {ref} {sha}\n" for ref, sha in sorted(changes.items()))
        if run_git(self.repo, "update-ref", "--stdin", input=lines, check=False).returncode != 0:
            # one missing object (a commit the user's gc already took) must not keep the others unpinned
            for ref, sha in sorted(changes.items()):
                if run_git(self.repo, "update-ref", ref, sha, check=False).returncode != 0:
                    changes.pop(ref)
        self.current.update(changes)


def read_pins(repo: Path, run_id: str) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", pin_prefix(run_id), check=False)
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def drop_pins(repo: Path, run_id: str) -> int:
    """Delete the run's pins (``clean``); returns how many there were."""
    refs = read_pins(repo, run_id)
    if refs:
        git(repo, "update-ref", "--stdin", input="".join(f"delete {r}\n" for r in sorted(refs)))
    return len(refs)
