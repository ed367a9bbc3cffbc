"""Live write leases: while a group runs, the files its unfinished tasks predict are leased to it.

A write by an agent of another group running at the same time to a leased path is refused at the write
(:meth:`LeaseTable.check`, called by the builtin file tools through a ``write_guard`` and by CLI agents'
drivers from their own hooks), so such a clash never reaches the merge. A write to a path nobody leases
is allowed (and reported as undeclared, as before).

The table is thread-safe. Readers never lock: every change builds a new immutable :class:`_Index` and
swaps it in, so a check is a dictionary look-up per path component plus one precompiled regular
expression per leased glob.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from agentwaves.plan.globs import parse_entry
from agentwaves.sandbox.paths import glob_regex

REFUSAL = (
    "{path} is being written by task {task} in group {group}; record what you need in your handoff, "
    "or finish and let a later task do it"
)


class Lease(NamedTuple):
    """One predicted ``files`` entry of a task, leased to the task's group."""

    task: str
    group: str
    entry: str  # the normalized entry, e.g. "src/export.py", "src/csv/", "src/**/*.py"


def refusal_message(path: str, lease: Lease) -> str:
    """The tool error an agent sees when its write to ``path`` is refused because of ``lease``."""
    return REFUSAL.format(path=path, task=lease.task, group=lease.group)


@dataclass(frozen=True)
class _Index:
    exact: dict[str, tuple[Lease, ...]] = field(default_factory=dict)
    dirs: dict[str, tuple[Lease, ...]] = field(default_factory=dict)  # "a/b" covers "a/b/..."; "" all
    globs: tuple[tuple[Callable[[str], object], Lease], ...] = ()
    groups: frozenset[str] = frozenset()  # the groups that hold leases
    holders: tuple[tuple[str, str], ...] = ()  # (task, group) of every task that holds leases


class LeaseTable:
    """Who may write which predicted path right now. ``take`` and ``release`` are called by the executor;
    :meth:`check` by whoever is about to write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[Lease, ...]] = {}  # task -> its leases, in plan order of entries
        self._index = _Index()

    def take(self, group: str, tasks: Mapping[str, Iterable[str]]) -> None:
        """Lease each task's predicted files (task -> files) to ``group``, replacing what it held."""
        with self._lock:
            for task, files in tasks.items():
                leases = tuple(Lease(task, group, parse_entry(f).text) for f in files if f.strip())
                if leases:
                    self._leases[task] = leases
                else:
                    self._leases.pop(task, None)
            self._rebuild()

    def release(self, *tasks: str) -> None:
        """Give back the leases of ``tasks`` (finished, failed or stopped)."""
        with self._lock:
            if any(self._leases.pop(t, None) is not None for t in tasks):
                self._rebuild()

    def holders(self) -> dict[str, str]:
        """task -> group of every task that holds leases now."""
        return dict(self._index.holders)

    def others_hold(self, group: str) -> bool:
        """Does any group but ``group`` hold a lease now?"""
        groups = self._index.groups
        return len(groups) > 1 or (len(groups) == 1 and group not in groups)

    def check(self, group: str, path: str) -> Lease | None:
        """The lease that forbids ``group`` to write ``path`` (a path relative to the repository root),
        or None when the write may go ahead: nobody leases the path, or ``group`` itself does.

        The stable entry point for CLI agents' hooks (e.g. a Claude Code ``PreToolUse`` hook's callback):
        call it with the writing task's group and the path, and refuse the write with
        :func:`refusal_message` when it returns a lease."""
        index = self._index
        if not (index.exact or index.dirs or index.globs):
            return None
        found: list[Lease] = list(index.exact.get(path, ()))
        if index.dirs:
            found += index.dirs.get("", ())
            cut = path.find("/")
            while cut != -1:
                found += index.dirs.get(path[:cut], ())
                cut = path.find("/", cut + 1)
        for match, lease in index.globs:
            if match(path):
                found.append(lease)
        if not found or any(lease.group == group for lease in found):
            return None
        return found[0]

    def _rebuild(self) -> None:
        exact: dict[str, list[Lease]] = {}
        dirs: dict[str, list[Lease]] = {}
        globs: list[tuple[Callable[[str], object], Lease]] = []
        for leases in self._leases.values():
            for lease in leases:
                entry = parse_entry(lease.entry)
                if entry.kind == "path":
                    exact.setdefault(entry.text, []).append(lease)
                elif entry.kind == "dir":
                    dirs.setdefault("/".join(entry.prefix), []).append(lease)
                else:
                    globs.append((glob_regex(entry.text.rstrip("/") + _glob_tail(entry.text)).match, lease))
        holders = tuple((task, leases[0].group) for task, leases in self._leases.items())
        self._index = _Index(
            {k: tuple(v) for k, v in exact.items()},
            {k: tuple(v) for k, v in dirs.items()},
            tuple(globs),
            frozenset(g for _, g in holders),
            holders,
        )


def _glob_tail(text: str) -> str:
    """A glob that names a directory (``src/*/``) covers everything under what it matches."""
    return "/**" if text.endswith("/") else ""


def write_guard(
    table: LeaseTable, task: str, group: str, on_refused: Callable[[str, Lease], None]
) -> Callable[[str], str | None]:
    """The callback the builtin file tools call before each write: None to allow, else the tool error
    (and ``on_refused(path, lease)`` is told, e.g. to emit a ``write_refused`` event)."""

    def guard(path: str) -> str | None:
        lease = table.check(group, path)
        if lease is None:
            return None
        on_refused(path, lease)
        return refusal_message(path, lease)

    guard.__qualname__ = f"write_guard[{task}]"
    return guard
