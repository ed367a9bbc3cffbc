"""Stacked bases for eager scheduling: where a group starts while the waves before it are not committed.

A group of wave ``w`` starts from the integration head plus every finished, uncommitted group of the
waves before ``w``, each merged against its own fork point (so only what that group changed), in wave
order. That is the tree ``--waves`` would hand it once those waves are committed, less the groups still
running; it always holds the group's dependencies, which eager waits for.

One chain per wave is kept and extended as groups finish, so a base costs one merge per group finished
since the last base for that wave, not one per group it builds on; a wave's first chain starts from a
copy of the nearest earlier wave's. When the integration head moves (a wave was committed) the chain is
carried over with one merge of the new head. If a chain does not merge cleanly (two finished groups
touched the same lines outside the plan's declared files), the base falls back to the head plus only the
groups this group builds on; if that conflicts too there is no base until the next wave commit.

Called from task threads, never under the run's state lock: the inputs are snapshots taken under it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from agentwaves.git.merge import merge_into, tree_of
from agentwaves.git.ops import git, identity_args

MESSAGE = "agentwaves: stacked base\n"


@dataclass(frozen=True)
class Branch:
    """A finished group's branch: its name, tip and fork point (the commit it started from)."""

    group: str
    head: str
    fork: str


@dataclass(frozen=True)
class _Chain:
    base: str  # the integration head the chain is built on
    commit: str  # base plus ``merged``
    tree: str
    merged: tuple[Branch, ...] = ()


def _commit(repo: Path, identity: list[str], tree: str, parents: list[str]) -> str:
    args = [*identity, "commit-tree", "--no-gpg-sign", tree]
    for p in dict.fromkeys(parents):
        args += ["-p", p]
    return git(repo, *args, input=MESSAGE)


def stack(
    repo: Path,
    base: str,
    branches: list[Branch],
    *,
    tree: str | None = None,
    identity: list[str] | None = None,
) -> tuple[str, str, list[str]]:
    """Merge ``branches`` in order onto commit ``base`` (whose tree is ``tree``, if known), each against its
    fork point. Returns (commit, tree, conflicted paths); on a conflict, the commit before that branch.

    Two git processes per branch: each result commit also takes the next branch's fork point as a parent,
    so the next ``merge-tree`` finds that fork point as merge base (the only best common ancestor: the
    branch's own commits are not in the stack)."""
    if not branches:
        return base, tree or tree_of(repo, base), []
    ident = identity_args(repo) if identity is None else identity
    tree = tree or tree_of(repo, base)
    current = base
    ours = _commit(repo, ident, tree, [base, branches[0].fork])
    for i, b in enumerate(branches):
        step = merge_into(repo, ours, b.head)
        if step.conflicts:
            return current, tree, list(step.conflicts)
        following = [branches[i + 1].fork] if i + 1 < len(branches) else []
        current = ours = _commit(repo, ident, step.tree, [current, b.head, *following])
        tree = step.tree
    return current, tree, []


class StackedBases:
    """The per-wave chains. Thread-safe; one build per wave at a time."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._identity: list[str] | None = None
        self._chains: dict[int, _Chain] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._lock = threading.Lock()
        self._broken: dict[int, str] = {}  # wave -> the head its chain failed to merge on

    def base(self, wave: int, head: str, finished: list[Branch], needed: list[Branch]) -> str | None:
        """The base for a group of ``wave``.

        ``finished``: every finished, uncommitted group of the waves before it, in wave order; ``needed``:
        those of them the group builds on (transitively), in wave order, for the fallback."""
        if not finished:
            return head
        with self._lock:
            lock = self._locks.setdefault(wave, threading.Lock())
            if self._identity is None:
                self._identity = identity_args(self.repo)
        with lock:
            commit = None if self._broken.get(wave) == head else self._extend(wave, head, finished)
        if commit is not None:
            return commit
        if not needed:
            return head
        commit, _, conflicts = stack(self.repo, head, needed, identity=self._identity)
        return None if conflicts else commit

    def _extend(self, wave: int, head: str, finished: list[Branch]) -> str | None:
        chain = self._chains.get(wave)
        if chain is not None and chain.base != head:
            chain = self._rebase(chain, head, finished)
        if chain is None or not set(chain.merged) <= set(finished):
            chain = self._start(wave, head, finished)
        have = set(chain.merged)
        todo = [b for b in finished if b not in have]
        commit, tree, conflicts = stack(
            self.repo, chain.commit, todo, tree=chain.tree, identity=self._identity
        )
        with self._lock:  # chains are replaced, never changed: _start may be copying another wave's
            if conflicts:
                self._broken[wave] = head
                self._chains.pop(wave, None)
                return None
            self._chains[wave] = _Chain(head, commit, tree, (*chain.merged, *todo))
        return commit

    def _start(self, wave: int, head: str, finished: list[Branch]) -> _Chain:
        """A new chain for ``wave``: a copy of the nearest earlier wave's chain on the same head (its groups
        are all in earlier waves, so also before ``wave``), else just the head."""
        with self._lock:
            lower = sorted(
                ((w, c) for w, c in self._chains.items() if w < wave and c.base == head), key=lambda x: x[0]
            )
        have = set(finished)
        for _, c in reversed(lower):
            if set(c.merged) <= have:
                return c
        return _Chain(head, head, tree_of(self.repo, head))

    def _rebase(self, chain: _Chain, head: str, finished: list[Branch]) -> _Chain | None:
        """Carry a chain over to a new integration head (waves committed since): one merge of the head
        into the chain, whose common base is the old head; the committed groups' changes are on both
        sides, identical. None if that does not merge cleanly."""
        step = merge_into(self.repo, chain.commit, head)
        if step.conflicts:
            return None
        assert self._identity is not None
        commit = _commit(self.repo, self._identity, step.tree, [chain.commit, head])
        still = set(finished)
        return _Chain(head, commit, step.tree, tuple(b for b in chain.merged if b in still))
