"""Landing a finished run on the user's branch, and cleaning up after runs.

``land`` only ever fast-forwards (``git merge --ff-only``), and only after checking everything that could
make that surprising: the run is done, HEAD is on a branch, the working tree is clean (``.agentwaves/``
aside), and the branch has not moved away from the run's base. When a check fails it changes nothing and
says what to do. ``clean`` removes a run's worktrees and group branches; it keeps an integration branch
that is not landed anywhere unless forced, and refuses while a run is executing in the repository.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from agentwaves.errors import AgentwavesError
from agentwaves.run.gitops import GitError, current_branch, delete_branch, git, is_dirty, run_git
from agentwaves.run.inspect import LANDED_FILE, RunRef, effective_state, is_live, lock_holder, read_landed
from agentwaves.run.merge import is_ancestor
from agentwaves.run.state import atomic_write, list_runs, now_iso, read_state, resolve_run_dir, runs_dir
from agentwaves.run.worktrees import GROUP_PREFIX, INTEGRATION_PREFIX, list_worktrees, prune, remove_worktree


def _rev(root: Path, rev: str) -> str | None:
    res = run_git(root, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", check=False)
    return res.stdout.strip() or None


def _dirty_paths(root: Path) -> list[str]:
    out = run_git(root, "status", "--porcelain", "--untracked-files=normal").stdout
    paths = [line[3:] for line in out.splitlines() if len(line) > 3]
    return [p for p in paths if p.strip('"') != ".agentwaves" and not p.strip('"').startswith(".agentwaves/")]


def land(ref: RunRef) -> dict[str, Any]:
    """Fast-forward the checked-out branch to the run's integration branch, or raise (exit 1) changing
    nothing. Returns ``{"run", "branch", "from", "to", "already"}``."""
    s, root, rid = ref.state, ref.root, ref.run_id
    state = effective_state(s, is_live(ref))
    if state != "done":
        how = {
            "running": "wait for it to finish",
            "pending": "wait for it to finish",
        }.get(state, f"resume it with `agentwaves resume {rid}`")
        raise AgentwavesError(f"run {rid} is {state}, not done: {how}, then land it")
    branch = current_branch(root)
    if branch is None or branch.startswith((INTEGRATION_PREFIX, GROUP_PREFIX)):
        where = "HEAD is detached" if branch is None else f"{branch} is agentwaves' own branch"
        raise AgentwavesError(
            f"{where}: check out the branch to land on (e.g. `git switch main`), "
            f"then run `agentwaves land {rid}`"
        )
    head = _rev(root, "HEAD") or ""
    landed = read_landed(ref.run_dir)
    target = _rev(root, f"refs/heads/{s.branch}")
    if target is None and landed and _rev(root, str(landed.get("landed"))):
        target = str(landed["landed"])
    if target is None:
        raise AgentwavesError(f"the integration branch {s.branch} of run {rid} no longer exists")
    if is_ancestor(root, target, head):
        if not landed:
            _record(ref, branch, head, target)
        return {"run": rid, "branch": branch, "from": head, "to": head, "already": True}
    if is_dirty(root):
        dirty = _dirty_paths(root)
        shown = ", ".join(dirty[:3]) + (", …" if len(dirty) > 3 else "")
        raise AgentwavesError(
            f"the working tree has uncommitted changes ({shown}): commit or stash them, "
            f"then run `agentwaves land {rid}`"
        )
    if not is_ancestor(root, head, target):
        raise AgentwavesError(
            f"your branch {branch} moved since the run started (base {s.base[:7]}, now {head[:7]}): "
            f"rebase the run with `git rebase {branch} {s.branch} && git switch {branch} && "
            f"agentwaves land {rid}` or merge it with `git merge {s.branch}`"
        )
    git(root, "merge", "--ff-only", "-q", s.branch)
    _record(ref, branch, head, target)
    return {"run": rid, "branch": branch, "from": head, "to": target, "already": False}


def _record(ref: RunRef, branch: str, previous: str, landed: str) -> None:
    data = {"landed": landed, "branch": branch, "previous": previous, "at": now_iso()}
    atomic_write(ref.run_dir / LANDED_FILE, json.dumps(data, indent=1) + "\n")


# ------------------------------------------------------------------------------------------------ clean


def dir_size(path: Path) -> int:
    """Bytes of the files under ``path`` (symlinks not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def landed_on(root: Path, sha: str) -> list[str]:
    """Local branches outside agentwaves' namespaces that contain ``sha``."""
    out = git(
        root, "for-each-ref", "--format=%(refname:short)", "--contains", sha, "refs/heads/", check=False
    )
    return [b for b in out.splitlines() if b and not b.startswith((INTEGRATION_PREFIX, GROUP_PREFIX))]


def _group_branches(root: Path, run_id: str) -> list[str]:
    out = git(root, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{GROUP_PREFIX}{run_id}/")
    return [b for b in out.splitlines() if b]


def clean_run(ref: RunRef, force: bool = False) -> dict[str, Any]:
    """Remove one run's worktrees and group branches; its integration branch only if landed (or forced).

    A run that is not done keeps its group branches (they hold its finished work for ``resume``) unless
    ``force``.
    """
    root, rid = ref.root, ref.run_id
    wt_root = ref.state_dir / "worktrees" / rid
    freed = dir_size(wt_root) if wt_root.is_dir() else 0
    removed: list[str] = []
    for info in list_worktrees(root)[1:]:
        if info.path.resolve().is_relative_to(wt_root.resolve()):
            remove_worktree(root, info.path)
            removed.append(ref.rel(info.path))
    prune(root)
    shutil.rmtree(wt_root, ignore_errors=True)
    state = ref.state.state
    keep_groups = state != "done" and not force
    deleted: list[str] = []
    if not keep_groups:
        for branch in _group_branches(root, rid):
            with contextlib.suppress(GitError):
                if delete_branch(root, branch, force=True):
                    deleted.append(branch)
    integration = _clean_integration(ref, force)
    if integration.startswith("deleted"):  # the replaced wave commits go with the integration branch
        refs = git(root, "for-each-ref", "--format=%(refname)", f"refs/agentwaves/{rid}/")
        for history in refs.splitlines():
            with contextlib.suppress(GitError):
                git(root, "update-ref", "-d", history)
    return {
        "run": rid,
        "state": state,
        "worktrees_removed": removed,
        "group_branches_deleted": deleted,
        "group_branches_kept": _group_branches(root, rid) if keep_groups else [],
        "integration_branch": ref.state.branch,
        "integration": integration,
        "freed_bytes": freed,
    }


def _clean_integration(ref: RunRef, force: bool) -> str:
    """What became of the integration branch: deleted-landed, deleted-forced, kept-unlanded, kept, absent."""
    root, branch = ref.root, ref.state.branch
    head = _rev(root, f"refs/heads/{branch}")
    if head is None:
        return "absent"
    if landed_on(root, head):
        outcome = "deleted-landed"
    elif force:
        outcome = "deleted-forced"
    else:
        return "kept-unlanded"
    try:
        delete_branch(root, branch, force=True)
    except GitError:
        return "kept"  # e.g. checked out somewhere
    return outcome


def clean(
    root: Path, state_dir: Path, run_id: str | None, *, all_runs: bool = False, force: bool = False
) -> dict[str, Any]:
    """Clean ``run_id`` (the latest run if None) or every run; refuse (exit 1) while a run is executing in
    the repository. Returns ``{"runs": [...], "freed_bytes": N}``."""
    if all_runs:
        dirs = [runs_dir(state_dir) / rid for rid in list_runs(state_dir)]
    else:
        dirs = [resolve_run_dir(state_dir, run_id)]
    holder = lock_holder(state_dir)
    if holder is not None:
        who = f" (pid {holder.get('pid')}, run {holder.get('run')})" if holder.get("pid") else ""
        raise AgentwavesError(
            f"a run is executing in this repository{who}: wait for it to finish or stop it, then clean"
        )
    results = [clean_run(RunRef(root, state_dir, d, read_state(d)), force) for d in dirs]
    return {"runs": results, "freed_bytes": sum(r["freed_bytes"] for r in results)}


__all__ = ["clean", "clean_run", "dir_size", "land", "landed_on"]
