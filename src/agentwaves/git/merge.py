"""Merging group branches without a working tree: ``git merge-tree --write-tree`` plus ``commit-tree``.

A wave is merged by folding its group branches, in order, into an accumulating commit that starts at the
wave's base. Each clean step becomes a throwaway two-parent commit, so the next ``merge-tree`` finds the
right merge base; a group that conflicts is skipped and reported with its paths and its tree with conflict
markers. The wave's result is then recorded as ONE single-parent commit on the integration branch
(:func:`commit_wave`), whose update is guarded by the expected old value of the ref.

Step API for conflict resolution (the executor drives it)::

    current = base
    for group, sha in branches:
        current, step = accumulate(repo, current, sha)
        if step.conflicts:
            checkout_tree(scratch, step.tree)            # files with conflict markers
            ...an agent edits the files in scratch...
            tree = write_tree_from_worktree(scratch)     # temp index; no real index touched
            current = record_resolution(repo, current, sha, tree)
    commit_wave(repo, parent=base, tree=tree_of(repo, current), message=..., ref=...)

Nothing here touches any index or working tree except :func:`checkout_tree`'s target.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentwaves.git.known import is_object_id, known_commit, known_tree
from agentwaves.git.ops import (
    STATE_DIR,
    GitError,
    check_owned_ref,
    exclude_pathspecs,
    git,
    head_sha,
    identity_args,
    literal_pathspecs,
    run_git,
    update_ref,
)

RUN_TRAILER = "Agentwaves-Run"
WAVE_TRAILER = "Agentwaves-Wave"
_MARKER_RE = re.compile(r"^(<{7}|>{7})( |$)", re.MULTILINE)


@dataclass(frozen=True)
class MergeStep:
    """The result of one ``merge-tree``: the merged tree (with conflict markers if any) and the conflicts."""

    tree: str
    conflicts: list[str]

    @property
    def clean(self) -> bool:
        return not self.conflicts


@dataclass
class WaveMerge:
    """The merge of one wave's group branches.

    ``tree`` is the merged tree, or None when no group could be merged. ``head`` is the throwaway commit
    holding the accumulated result (the base when nothing merged). Conflicting groups are left out and
    listed in ``conflicts`` (group → paths) with their tree-with-markers in ``conflicted_tree``.
    """

    tree: str | None
    merged: list[str] = field(default_factory=list)
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    conflicted_tree: dict[str, str] = field(default_factory=dict)
    head: str = ""


def merge_into(repo: Path, ours: str, theirs: str) -> MergeStep:
    """Three-way merge of two commits (merge base found by git) into a new tree; no working tree used."""
    res = run_git(
        repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs, check=False
    )
    tokens = res.stdout.split("\0")
    if res.returncode not in (0, 1) or not is_object_id(tokens[0]):
        first = next((ln for ln in res.stderr.splitlines() if ln.strip()), "no output")
        raise GitError(f"git merge-tree {ours} {theirs} failed (exit {res.returncode}): {first.strip()}")
    conflicts: list[str] = []
    if res.returncode == 1:
        conflicts = list(dict.fromkeys(t for t in tokens[1:] if t))
    return MergeStep(tokens[0], conflicts)


def tree_of(repo: Path, rev: str = "HEAD") -> str:
    """The tree id of a commit (of the worktree's HEAD by default)."""
    return known_tree(repo, rev) or git(repo, "rev-parse", "--verify", "-q", f"{rev}^{{tree}}")


def commit_tree(repo: Path, tree: str, parents: list[str], message: str) -> str:
    """Create a commit object for ``tree`` with ``parents``; no ref is moved."""
    args = [*identity_args(repo), "commit-tree", "--no-gpg-sign", tree]
    for p in parents:
        args += ["-p", p]
    sha = git(repo, *args, input=message if message.endswith("\n") else message + "\n")
    known_commit(repo, sha, tree=tree)
    return sha


def accumulate(
    repo: Path, current: str, theirs: str, message: str | None = None, *, fork: str | None = None
) -> tuple[str, MergeStep]:
    """Merge ``theirs`` into the accumulated commit ``current``.

    Clean: returns a new throwaway commit (parents ``current`` and ``theirs``) and the step. Conflicted:
    returns ``current`` unchanged and the step (its tree has conflict markers; its conflicts the paths).
    ``fork`` is where ``theirs`` branched off, if that may not be in ``current``'s history (a branch
    stacked on another unmerged branch): the merge then uses it as merge base, so only what ``theirs``
    changed since ``fork`` is merged.
    """
    ours = current
    if fork is not None and not is_ancestor(repo, fork, current):
        ours = commit_tree(repo, tree_of(repo, current), [current, fork], "agentwaves: merge base")
    step = merge_into(repo, ours, theirs)
    if step.conflicts:
        return current, step
    return record_resolution(repo, current, theirs, step.tree, message), step


def record_resolution(repo: Path, current: str, theirs: str, tree: str, message: str | None = None) -> str:
    """Record ``tree`` as the merge of ``theirs`` into ``current`` (e.g. after a resolver fixed conflicts)."""
    if tree == tree_of(repo, current) and is_ancestor(repo, theirs, current):
        return current  # nothing new: the group made no changes
    return commit_tree(repo, tree, [current, theirs], message or f"agentwaves: merge {theirs}")


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    """True if ``ancestor`` is reachable from ``descendant`` (or is it)."""
    res = run_git(repo, "merge-base", "--is-ancestor", ancestor, descendant, check=False)
    if res.returncode not in (0, 1):
        raise GitError(f"git merge-base --is-ancestor failed (exit {res.returncode}): {res.stderr.strip()}")
    return res.returncode == 0


def merge_wave(
    repo: Path,
    base_commit: str,
    branches: list[tuple[str, str]],
    forks: Mapping[str, str] | None = None,
) -> WaveMerge:
    """Merge each ``(group, branch_sha)`` in order into ``base_commit``; conflicting groups are skipped.

    ``forks`` optionally maps a group to the commit its branch started from (see :func:`accumulate`).
    """
    current = head_sha(repo, base_commit)
    result = WaveMerge(tree=None, head=current)
    for group, sha in branches:
        fork = (forks or {}).get(group)
        new, step = accumulate(repo, current, sha, f"agentwaves: merge group {group}", fork=fork)
        if step.conflicts:
            result.conflicts[group] = step.conflicts
            result.conflicted_tree[group] = step.tree
            continue
        current = new
        result.merged.append(group)
    result.head = current
    if result.merged:
        result.tree = tree_of(repo, current)
    return result


def wave_trailers(run_id: str, wave: int) -> str:
    """The trailer block that marks a wave commit (see :func:`find_wave_commit`)."""
    return f"{RUN_TRAILER}: {run_id}\n{WAVE_TRAILER}: {wave}\n"


def wave_message(run_id: str, wave: int, summary: str, body: str = "") -> str:
    """A wave commit message: summary line, optional body, then the run and wave trailers."""
    parts = [summary.strip()]
    if body.strip():
        parts.append(body.strip())
    parts.append(wave_trailers(run_id, wave))
    return "\n\n".join(parts)


def commit_wave(
    repo: Path, parent: str, tree: str, message: str, ref: str, *, worktree: Path | None = None
) -> str:
    """Commit ``tree`` with the single parent ``parent`` and move ``ref`` from ``parent`` to it.

    The ref update fails loudly (GitError) if ``ref`` no longer points at ``parent``. If ``worktree`` has
    ``ref`` checked out (the integration worktree), its index and files are brought up to the new commit.
    """
    check_owned_ref(ref)
    parent_sha = head_sha(repo, parent)
    commit = commit_tree(repo, without_state_dir(repo, tree, parent_sha), [parent_sha], message)
    update_ref(repo, ref, commit, parent_sha)
    if worktree is not None:
        git(worktree, "reset", "-q", "--hard", commit)
    return commit


def without_state_dir(repo: Path, tree: str, parent: str) -> str:
    """``tree`` with its top-level ``.agentwaves`` entry as in ``parent``: whatever a task, a command or a
    resolver put under agentwaves' own directory never reaches a wave commit (and so never ``land``)."""
    entries = [e for e in git(repo, "ls-tree", "-z", tree).split("\0") if e]
    ours = [e for e in entries if e.split("\t", 1)[-1] == STATE_DIR]
    theirs = [e for e in git(repo, "ls-tree", "-z", parent, "--", STATE_DIR).split("\0") if e]
    if ours == theirs:
        return tree
    kept = [e for e in entries if e.split("\t", 1)[-1] != STATE_DIR] + theirs
    return git(repo, "mktree", "-z", input="".join(e + "\0" for e in kept))


def find_wave_commit(repo: Path, ref: str, run_id: str, wave: int) -> str | None:
    """The commit on ``ref``'s first-parent history carrying this run's and wave's trailers, if any."""
    if run_git(repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False).returncode != 0:
        return None
    res = run_git(
        repo,
        "log",
        "--first-parent",
        "-z",
        "--fixed-strings",
        "--all-match",
        f"--grep={RUN_TRAILER}: {run_id}",
        f"--grep={WAVE_TRAILER}: {wave}",
        "--format=%H%n%(trailers:only,unfold)",
        ref,
        "--",
    )
    for record in res.stdout.split("\0"):
        lines = record.strip("\n").splitlines()
        if not lines:
            continue
        trailers: dict[str, set[str]] = {}
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep:
                trailers.setdefault(key.strip().lower(), set()).add(value.strip())
        if run_id in trailers.get(RUN_TRAILER.lower(), set()) and str(wave) in trailers.get(
            WAVE_TRAILER.lower(), set()
        ):
            return lines[0].strip()
    return None


def checkout_tree(worktree: Path, tree: str) -> None:
    """Make the worktree's files and index match ``tree`` exactly; HEAD stays where it is.

    Tracked changes are discarded, files not in ``tree`` removed, untracked files removed; ignored files
    (copied ``node_modules``, ``.env``) are kept unless ``tree`` itself has them.
    """
    git(worktree, "read-tree", "--reset", "-u", tree)
    git(worktree, "clean", "-fdq")


def _index_path(worktree: Path) -> Path:
    p = Path(git(worktree, "rev-parse", "--git-path", "index"))
    return p if p.is_absolute() else worktree / p


def write_tree_from_worktree(worktree: Path, exclude: list[str] | tuple[str, ...] = ()) -> str:
    """The tree of the worktree's files as they are now (like ``add -A`` + ``write-tree``).

    Uses a temporary index file (``GIT_INDEX_FILE``) seeded from the worktree's index, so no real index
    is touched. Paths in ``exclude`` (relative to the worktree root) are not staged.
    """
    fd, tmp_name = tempfile.mkstemp(prefix="agentwaves-index-")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        env = {"GIT_INDEX_FILE": str(tmp)}
        real = _index_path(worktree)
        if real.exists():
            shutil.copyfile(real, tmp)
        else:
            tmp.unlink()
            git(worktree, "read-tree", "HEAD", env=env)
        git(worktree, "add", "-A", "--", ".", *exclude_pathspecs(exclude), env=env)
        return git(worktree, "write-tree", env=env)
    finally:
        tmp.unlink(missing_ok=True)


def resolution_tree(worktree: Path, conflicted_tree: str, paths: list[str]) -> tuple[str, list[str]]:
    """The resolver's answer, limited to the conflicted ``paths``: ``conflicted_tree`` with only those
    paths taken from the worktree, and the paths the resolver changed besides them (refused: they never
    reach the wave commit)."""
    full = write_tree_from_worktree(worktree)
    fd, tmp_name = tempfile.mkstemp(prefix="agentwaves-index-")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        env = {"GIT_INDEX_FILE": str(tmp)}
        git(worktree, "read-tree", conflicted_tree, env=env)
        if paths:
            git(worktree, "add", "-A", "--", *literal_pathspecs(paths), env=env)
        tree = git(worktree, "write-tree", env=env)
    finally:
        tmp.unlink(missing_ok=True)
    out = run_git(worktree, "diff", "--no-renames", "--name-only", "-z", tree, full, "--").stdout
    return tree, sorted(p for p in out.split("\0") if p)


def conflict_markers_left(worktree: Path, paths: list[str]) -> list[str]:
    """Which of ``paths`` still contain conflict markers (``<<<<<<<`` / ``>>>>>>>`` lines)."""
    left: list[str] = []
    for rel in paths:
        p = worktree / rel
        if not p.is_file():
            continue
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _MARKER_RE.search(text):
            left.append(rel)
    return left
