"""Before a resume: check what ``state.json`` says against what git holds, and never trust it blindly.

``state.json`` says which waves and tasks are done and records their commits; git may no longer agree (the
integration branch deleted by ``clean --force`` or ``git update-ref -d``, a group branch reset, objects
pruned by ``git gc``). :func:`verify_recorded` walks every recorded commit:

- a wave is done only if its commit exists and continues the chain from the run's base (each wave commit's
  parent is the previous one); the first wave that fails that, and every later one, runs again;
- the integration branch is rebuilt at the last good wave commit when it is missing or behind it; when it
  points somewhere else entirely the resume stops with a clear error;
- in the waves that are not done, a missing group branch is recreated at its recorded head when that
  commit exists; a task is done only if its commit exists and is on its group branch, else it runs again;
- a missing base commit stops the resume with a clear error (nothing can be rebuilt without it).

:func:`check_snapshot` refuses a plan snapshot that no longer matches the state (an edited
``runs/<id>/plan.yaml``) with one line instead of a ``KeyError``.
"""

from __future__ import annotations

from pathlib import Path

from agentwaves.errors import AgentwavesError, UsageError
from agentwaves.git.ops import git, run_git
from agentwaves.plan import Analysis
from agentwaves.state.store import RunState


def check_snapshot(path: Path, analysis: Analysis, state: RunState) -> None:
    """Raise (exit 2) unless the plan's waves, groups and tasks are the ones the run's state records."""
    planned = {g.name: list(g.tasks) for w in analysis.waves for g in w.groups}
    recorded = {g.name: [t.id for t in g.tasks] for w in state.waves for g in w.groups}
    if planned == recorded:
        return
    ptasks = {t for ts in planned.values() for t in ts}
    rtasks = {t for ts in recorded.values() for t in ts}
    diff = sorted(ptasks ^ rtasks)
    what = f"tasks {', '.join(diff[:5])} differ" if diff else "its groups differ"
    raise UsageError(
        f"{path} no longer matches run {state.run_id}'s state ({what}): restore the plan the run started "
        f"with, or start a new run with `agentwaves execute --plan FILE`"
    )


def _exists(repo: Path, sha: str | None) -> bool:
    if not sha:
        return False
    return run_git(repo, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0


def _rev(repo: Path, ref: str) -> str | None:
    res = run_git(repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
    return res.stdout.strip() or None


def _parent(repo: Path, sha: str) -> str | None:
    res = run_git(repo, "rev-parse", "--verify", "-q", f"{sha}^1", check=False)
    return res.stdout.strip() or None


def _is_ancestor(repo: Path, a: str, b: str) -> bool:
    return run_git(repo, "merge-base", "--is-ancestor", a, b, check=False).returncode == 0


def _set_branch(repo: Path, branch: str, sha: str, old: str | None) -> None:
    git(repo, "update-ref", "-m", "agentwaves: resume", f"refs/heads/{branch}", sha, old or "0" * len(sha))


def verify_recorded(repo: Path, state: RunState) -> list[str]:
    """Bring ``state`` in line with the commits that exist (see the module docstring). Returns one note per
    change; raises :class:`AgentwavesError` when the run cannot be resumed. Does not save."""
    rid = state.run_id
    if not _exists(repo, state.base):
        raise AgentwavesError(
            f"run {rid} cannot be resumed: its base commit {state.base[:10]} no longer exists in the "
            "repository (pruned by git gc?): start a new run with `agentwaves execute`"
        )
    notes: list[str] = []
    chain, broken = state.base, False
    rebuild = getattr(state, "rebuild", None)  # a pending rebuild replaces these waves' commits itself
    for w in sorted(state.waves, key=lambda w: w.index):
        if rebuild is not None and w.index >= rebuild.from_wave:
            break
        if w.state != "done":
            continue
        if not broken and _exists(repo, w.commit) and _parent(repo, str(w.commit)) == chain:
            chain = str(w.commit)
            continue
        if not broken:
            why = "is missing" if not _exists(repo, w.commit) else "is not on the run's history"
            notes.append(f"wave {w.index}'s commit {str(w.commit)[:10]} {why}: it runs again")
        broken = True
        w.state, w.commit, w.finished = "pending", None, None
        for g in w.groups:
            if g.state == "done":
                g.state = "pending"
            for t in g.tasks:
                if t.kind == "gate":  # a gate checked the waves that run again: it runs again too
                    t.state, t.finished = "pending", None
    head = _rev(repo, f"refs/heads/{state.branch}")
    if head is None:
        _set_branch(repo, state.branch, chain, None)
        if chain != state.base:
            notes.append(f"integration branch {state.branch} was missing: rebuilt at {chain[:10]}")
    elif head != chain and not _is_ancestor(repo, chain, head):
        if not _is_ancestor(repo, head, chain):
            raise AgentwavesError(
                f"run {rid} cannot be resumed: its integration branch {state.branch} points at {head[:10]}, "
                f"which does not contain the run's committed waves ({chain[:10]}): restore it with "
                f"`git update-ref refs/heads/{state.branch} {chain}`, or start a new run"
            )
        _set_branch(repo, state.branch, chain, head)
        notes.append(f"integration branch {state.branch} was behind: moved to {chain[:10]}")
    for w in state.waves:
        if w.state == "done":
            continue
        for g in w.groups:
            notes += _verify_group(repo, g)
    if notes and state.state == "done":
        state.state = "failed"
    return notes


def _verify_group(repo: Path, g) -> list[str]:  # type: ignore[no-untyped-def]
    notes: list[str] = []
    if g.base and not _exists(repo, g.base):
        g.base = None
    if g.head and not _exists(repo, g.head):
        g.head = None
    head = _rev(repo, f"refs/heads/{g.branch}") if g.branch else None
    if g.branch and head is None and g.head and g.base:
        _set_branch(repo, g.branch, g.head, None)
        head = g.head
        notes.append(f"group branch {g.branch} was missing: rebuilt at {g.head[:10]}")
    if head is None:
        g.branch, g.base, g.head = "", None, None
    for t in g.tasks:
        if t.state != "done" or t.kind == "gate":
            continue
        if t.commit and head and _exists(repo, t.commit) and _is_ancestor(repo, t.commit, head):
            continue
        notes.append(f"task {t.id}'s commit {str(t.commit)[:10]} is gone: it runs again")
        t.state, t.commit, t.finished, t.handoff = "pending", None, None, None
        g.state, g.head = "pending", None
    return notes
