"""Commits this process knows exist: git made them (``commit-tree``, a task commit) or found them
(``rev-parse``), per repository (every worktree of one shares its object store).

A commit never changes and the run's own are pinned against ``gc`` (state/pins.py), so
:func:`agentwaves.git.ops.head_sha` need not ask git again whether a full id it has seen names a commit,
and :func:`agentwaves.git.merge.tree_of` need not ask for the tree of a commit made here. Each wave
asks about the same few commits several times (its base, each merge step, the wave commit).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from agentwaves.git.harden import config_key


def _store(repo: Path) -> str:
    """The repository's common git directory and the version of its config file: a repository made
    again at the same path (new files) shares nothing known with the old one."""
    return config_key(repo)


def is_known_commit(repo: Path, rev: str) -> bool:
    """Whether ``rev`` is a full id this process already found to name a commit of ``repo``."""
    if not is_object_id(rev):
        return False
    with _lock:
        return (_store(repo), rev) in _verified


def known_commit(repo: Path, sha: str, *, tree: str | None = None) -> None:
    """Note that the full id ``sha`` names a commit of ``repo`` (git just made or found it), and the id
    of its ``tree`` when known (:func:`known_tree`)."""
    key = (_store(repo), sha)
    with _lock:
        _verified.add(key)
        if tree is not None and is_object_id(tree):
            _trees[key] = tree


def known_tree(repo: Path, rev: str) -> str | None:
    """The tree id of commit ``rev`` (a full id) if this process made that commit, else None."""
    if not is_object_id(rev):
        return None
    with _lock:
        return _trees.get((_store(repo), rev))


def is_object_id(text: str) -> bool:
    """Whether ``text`` is a full git object id (SHA-1: 40 hex digits; SHA-256: 64)."""
    return _OID.fullmatch(text) is not None


_OID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


_verified: set[tuple[str, str]] = set()  # (the repository's :func:`_store`, a full commit id)
_trees: dict[tuple[str, str], str] = {}  # (its store, full commit id) -> the commit's tree id
_lock = threading.Lock()
