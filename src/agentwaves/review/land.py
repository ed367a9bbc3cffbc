"""Landing a finished run on the user's branch, and cleaning up after runs.

``land`` only ever fast-forwards (``git merge --ff-only``), and only after checking everything that could
make that surprising: the run is done, HEAD is on a branch, the branch has not moved away from the run's
base, the run adds nothing under ``.agentwaves/``, and no file the run's tree would write or delete is in
the way in the working tree (a tracked file with uncommitted changes, an untracked or an ignored file:
git itself would silently overwrite an ignored ``.env``). Unrelated changes and files are kept.
When a check fails it changes nothing and says what to do. ``clean`` removes a run's worktrees, group
branches and pins (``refs/agentwaves/<run>/``); it keeps an integration branch that is not landed anywhere
unless forced, and refuses while a run is executing in the repository.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from agentwaves.errors import AgentwavesError
from agentwaves.git.merge import is_ancestor
from agentwaves.git.ops import STATE_DIR, GitError, current_branch, delete_branch, git, run_git
from agentwaves.git.worktrees import GROUP_PREFIX, INTEGRATION_PREFIX, list_worktrees, prune, remove_worktree
from agentwaves.review.inspect import LANDED_FILE, RunRef, effective_state, is_live, lock_holder, read_landed
from agentwaves.state.pins import drop_pins
from agentwaves.state.store import (
    StateDamaged,
    atomic_write,
    list_runs,
    now_iso,
    read_state,
    resolve_run_dir,
    runs_dir,
)


def _rev(root: Path, rev: str) -> str | None:
    res = run_git(root, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", check=False)
    return res.stdout.strip() or None


def in_the_way(root: Path, head: str, target: str) -> list[str]:
    """Files of the working tree that fast-forwarding ``head`` to ``target`` would overwrite or delete,
    each with why: a tracked file with uncommitted changes, or a file git does not track (untracked or
    ignored: git itself overwrites ignored files without asking). Anything else is left alone and kept."""
    out = run_git(root, "diff", "--no-renames", "--name-only", "-z", head, target, "--").stdout
    changed = [p for p in out.split("\0") if p]
    if not changed:
        return []
    tracked = set(run_git(root, "ls-tree", "-r", "-z", "--name-only", head).stdout.split("\0"))
    out = run_git(root, "diff", "--no-renames", "--name-only", "-z", "HEAD", "--").stdout
    modified = {p for p in out.split("\0") if p}
    found: list[str] = []
    for path in changed:
        if path in tracked:
            if path in modified:
                found.append(f"{path} (modified)")
            continue
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):  # the file itself, or a file where a directory must go
            prefix = "/".join(parts[:depth])
            where = root / prefix
            if prefix in tracked or not os.path.lexists(where) or (depth < len(parts) and where.is_dir()):
                continue
            found.append(f"{prefix} ({'ignored' if _ignored(root, prefix) else 'untracked'})")
            break
    return sorted(set(found))


def _ignored(root: Path, path: str) -> bool:
    return run_git(root, "check-ignore", "-q", "--no-index", "--", path, check=False).returncode == 0


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
    if not is_ancestor(root, head, target):
        from agentwaves.review.basing import not_fast_forward

        raise AgentwavesError(not_fast_forward(ref, branch, head))
    run_files = run_git(root, "diff", "--name-only", "-z", head, target, "--", STATE_DIR).stdout
    if run_files.strip("\0"):
        raise AgentwavesError(
            f"run {rid} adds files under {STATE_DIR}/ ({run_files.split(chr(0))[0]}), agentwaves' own "
            "directory: it is not landed; inspect it with `agentwaves review`"
        )
    blocking = in_the_way(root, head, target)
    if blocking:
        shown = ", ".join(blocking[:5]) + (f" and {len(blocking) - 5} more" if len(blocking) > 5 else "")
        raise AgentwavesError(
            f"landing run {rid} would overwrite files in your working tree: {shown}: move, commit or "
            f"stash them, then run `agentwaves land {rid}`"
        )
    git(root, "merge", "--ff-only", "-q", target)
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
    prune(root, under=wt_root)
    shutil.rmtree(wt_root, ignore_errors=True)
    state = ref.state.state
    keep_groups = state != "done" and not force
    deleted: list[str] = []
    if not keep_groups:
        drop_pins(root, rid)  # from now on the run's objects are git's to collect
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
    results, skipped = [], []
    for d in dirs:
        try:
            state = read_state(d)
        except StateDamaged as exc:
            if not all_runs:
                raise
            skipped.append({"run": d.name, "error": str(exc)})  # one damaged run never stops the others
            continue
        results.append(clean_run(RunRef(root, state_dir, d, state), force))
    return {"runs": results, "skipped": skipped, "freed_bytes": sum(r["freed_bytes"] for r in results)}


__all__ = ["clean", "clean_run", "dir_size", "land", "landed_on"]
