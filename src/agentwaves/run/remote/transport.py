"""Moving commits between this machine and a Ray node with git bundles: no shared file system.

Out: a bundle of the group branch at its start commit, minus what the node already has (its cache's
ref tips), so a second group on a node is sent only the commits it lacks. Back: a bundle of the one task
commit on top of the start, which is verified (it needs only the start, carries only the group branch,
holds one commit whose parent is the start and whose trailer names the task) before the group branch
here moves to it. A node keeps one bare cache repository per repository (keyed by its root commit).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from agentwaves.errors import AgentwavesError
from agentwaves.git.ops import git, run_git, update_ref
from agentwaves.run.taskrun import TASK_TRAILER

HAVES_KEPT = 64


class BundleRejected(AgentwavesError):
    """A bundle a node sent back does not hold exactly the task's commit on the group's base."""


class MissingBase(AgentwavesError):
    """The node's cache lacks commits a bundle builds on (the cache was wiped): send everything."""


# ------------------------------------------------------------------------------------------ this machine


def known_commits(repo: Path, shas: list[str]) -> list[str]:
    """The ``shas`` that are commits in ``repo`` (a node may report tips this repository never had)."""
    if not shas:
        return []
    out = git(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)", input="\n".join(shas) + "\n")
    return [ln.split()[0] for ln in out.splitlines() if ln.endswith(" commit")]


def bundle_out(repo: Path, ref: str, tip: str, haves: list[str], dest: Path) -> bool:
    """Write a bundle of ``ref`` (at ``tip``) without the history of ``haves`` to ``dest``.

    False (and no file) when the node has ``tip`` already."""
    haves = known_commits(repo, haves)
    revs = [tip, *(f"^{h}" for h in haves)]
    missing = git(repo, "rev-list", "-n", "1", "--stdin", input="\n".join(revs) + "\n")
    if not missing:
        return False
    stdin = "\n".join([ref, *(f"^{h}" for h in haves)]) + "\n"
    git(repo, "bundle", "create", "-q", str(dest), "--stdin", input=stdin)
    return True


def import_task_bundle(repo: Path, bundle: Path, branch: str, start: str, task_id: str) -> str:
    """Verify the task bundle and move ``branch`` from ``start`` to its commit; return the commit."""
    full = f"refs/heads/{branch}"
    res = run_git(repo, "bundle", "verify", "-q", str(bundle), check=False)
    if res.returncode != 0:
        raise BundleRejected(f"task {task_id}: the returned bundle does not verify: {res.stderr.strip()}")
    heads = [ln.split() for ln in git(repo, "bundle", "list-heads", str(bundle)).splitlines() if ln]
    if len(heads) != 1 or heads[0][1] != full:
        names = ", ".join(h[-1] for h in heads) or "none"
        raise BundleRejected(f"task {task_id}: the returned bundle must hold only {full} (holds {names})")
    sha = heads[0][0]
    # objects only (no ref, no FETCH_HEAD): fetch checks that they are complete and connected
    git(repo, "fetch", "-q", "--no-tags", "--no-write-fetch-head", str(bundle), full)
    parents = git(repo, "rev-list", "--parents", f"{start}..{sha}").splitlines()
    if len(parents) != 1 or parents[0].split() != [sha, start]:
        raise BundleRejected(f"task {task_id}: the returned branch is not one commit on the group's base")
    trailer = git(repo, "log", "-1", f"--format=%(trailers:key={TASK_TRAILER},valueonly)", sha).strip()
    if trailer != task_id:
        raise BundleRejected(f"task {task_id}: the returned commit is not this task's ({trailer or 'none'})")
    update_ref(repo, branch, sha, start)
    return sha


# ------------------------------------------------------------------------------------------ a node


@contextlib.contextmanager
def cache_lock(cache: Path) -> Iterator[None]:
    """One git writer at a time in a node's cache (several Ray workers share it)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def open_cache(cache: Path) -> Path:
    """The node's bare cache repository (created empty the first time)."""
    if not (cache / "HEAD").exists():
        cache.mkdir(parents=True, exist_ok=True)
        git(cache, "init", "-q", "--bare")
        git(cache, "config", "gc.auto", "0")
    return cache


def node_haves(cache: Path) -> list[str]:
    """The newest ref tips of the cache: what the other side need not send again."""
    if not (cache / "HEAD").exists():
        return []
    out = git(
        cache, "for-each-ref", "--sort=-committerdate", f"--count={HAVES_KEPT}", "--format=%(objectname)"
    )
    return sorted(set(out.split()))


def bundle_in(cache: Path, bundle: Path, ref: str) -> str:
    """Fetch ``ref`` from ``bundle`` into the cache, kept under ``refs/agentwaves/have/``; its commit."""
    heads = git(cache, "bundle", "list-heads", str(bundle), ref).split()
    if not heads:
        raise AgentwavesError(f"the bundle holds no {ref}")
    res = run_git(cache, "bundle", "verify", "-q", str(bundle), check=False)
    if res.returncode != 0:
        raise MissingBase(res.stderr.strip().splitlines()[0] if res.stderr.strip() else "prerequisites")
    sha = heads[0]
    git(
        cache,
        "fetch",
        "-q",
        "--no-tags",
        "--no-write-fetch-head",
        str(bundle),
        f"+{ref}:refs/agentwaves/have/{sha}",
    )
    return sha


def has_commit(cache: Path, sha: str) -> bool:
    return run_git(cache, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0


def bundle_back(worktree: Path, branch: str, start: str, dest: Path) -> None:
    """A bundle of ``branch`` without ``start``'s history: the task's commit."""
    git(worktree, "bundle", "create", "-q", str(dest), f"refs/heads/{branch}", f"^{start}")
