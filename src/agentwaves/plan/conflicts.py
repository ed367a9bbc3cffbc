"""Which tasks conflict: overlapping predicted writes or a shared resource, found through an index by path.

Entries are filed under their literal prefix (``src/csv/`` for ``src/csv/**/*.py``) in a tree of path
components. Two entries can only overlap when one's node is the other's node or below it, so a path is
only ever compared with the entries filed at the same node and with the directories and globs filed above
it; tasks with unrelated paths are never compared.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from agentwaves.plan.globs import Entry, overlaps, parse_entry
from agentwaves.plan.model import Plan


@dataclass(frozen=True)
class Conflict:
    """Tasks ``a`` and ``b`` (``a`` first in plan order) must not run at the same time."""

    a: str
    b: str
    reason: str  # "both write src/export.py", "both use db:invoices", "src/** overlaps src/util/x.py"
    subjects: tuple[str, ...] = ()  # the files and resources behind it, most specific first

    @property
    def tasks(self) -> tuple[str, str]:
        return (self.a, self.b)


# What two tasks share, before it becomes a Conflict: (kind, text, detail) with kind
# WRITE (same entry), OVERLAP (text = the more general entry, detail = the other) or USE (a resource).
WRITE, OVERLAP, USE = 0, 1, 2
Shared = tuple[int, str, str]


def describe(shared: list[Shared]) -> tuple[str, tuple[str, ...]]:
    """The reason ("both write src/a.py; both use db:x") and the subjects behind it."""
    if len(shared) == 1:  # the common case, kept cheap
        kind, text, detail = shared[0]
        if kind == WRITE:
            return f"both write {text}", (text,)
        if kind == USE:
            return f"both use {text}", (text,)
        return f"{text} overlaps {detail}", (detail,)
    writes = [t for k, t, _ in shared if k == WRITE]
    overlaps_ = [(t, d) for k, t, d in shared if k == OVERLAP]
    uses = [t for k, t, _ in shared if k == USE]
    parts: list[str] = []
    if writes:
        parts.append("both write " + enumerate_items(writes))
    parts += [f"{general} overlaps {specific}" for general, specific in overlaps_[:2]]
    if len(overlaps_) > 2:
        parts.append(f"{len(overlaps_) - 2} more overlapping entries")
    if uses:
        parts.append("both use " + enumerate_items(uses))
    subjects = tuple(dict.fromkeys([*writes, *(d for _, d in overlaps_), *uses]))
    return "; ".join(parts), subjects


def enumerate_items(items: list[str], limit: int = 3) -> str:
    """``a``, ``a and b``, ``a, b and c``, ``a, b, c and 2 more``."""
    items = list(dict.fromkeys(items))
    if len(items) > limit:
        return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def find_conflicts(plan: Plan) -> list[Conflict]:
    """Every conflicting pair of tasks, ordered by the plan position of ``a`` then ``b``."""
    found: dict[tuple[int, int], list[Shared]] = defaultdict(list)

    # resources: an index by name
    users: dict[str, list[int]] = defaultdict(list)
    for i, task in enumerate(plan.tasks):
        for res in dict.fromkeys(r.strip() for r in task.resources):
            users[res].append(i)
    for res, idxs in users.items():
        for k, x in enumerate(idxs):
            for y in idxs[k + 1 :]:
                found[(x, y)].append((USE, res, ""))

    # files: an index by literal prefix
    index = _PrefixIndex()
    for i, task in enumerate(plan.tasks):
        seen: set[str] = set()
        for raw in task.files:
            entry = parse_entry(raw)
            if entry.text not in seen:
                seen.add(entry.text)
                index.add(entry, i)
    for (x, ex), (y, ey) in index.candidate_pairs():
        if x == y:
            continue
        key = (x, y) if x < y else (y, x)
        if ex.text == ey.text and ex.kind == ey.kind:
            found[key].append((WRITE, ex.text, ""))
        elif overlaps(ex, ey):
            general, specific = _general_first(ex, ey)
            found[key].append((OVERLAP, general.text, specific.text))

    ids = [t.id for t in plan.tasks]
    out = []
    for (x, y), shared in sorted(found.items()):
        reason, subjects = describe(shared)
        out.append(Conflict(ids[x], ids[y], reason, subjects))
    return out


def _general_first(x: Entry, y: Entry) -> tuple[Entry, Entry]:
    rank = {"dir": 0, "glob": 1, "path": 2}
    if (rank[x.kind], len(x.prefix)) <= (rank[y.kind], len(y.prefix)):
        return x, y
    return y, x


class _PrefixIndex:
    """Exact paths by their text; every entry also sorted by its literal prefix (``"src/csv/"``), so the
    entries a directory or glob may cover are one contiguous range of that order."""

    def __init__(self) -> None:
        self.paths: dict[str, list[tuple[int, Entry]]] = defaultdict(list)
        self.patterns: list[tuple[int, Entry]] = []

    def add(self, entry: Entry, task: int) -> None:
        if entry.is_pattern:
            self.patterns.append((task, entry))
        else:
            self.paths[entry.text].append((task, entry))

    def candidate_pairs(self) -> Iterable[tuple[tuple[int, Entry], tuple[int, Entry]]]:
        """Pairs that may overlap: equal paths, and a directory or glob with anything under its prefix."""
        for same in self.paths.values():
            for k, first in enumerate(same):
                for second in same[k + 1 :]:
                    yield first, second
        if not self.patterns:
            return
        ordered = [(text + "/", *item) for text, same in self.paths.items() for item in same]
        ordered += [(_key(entry.prefix), task, entry) for task, entry in self.patterns]
        ordered.sort(key=lambda item: item[0])
        keys = [item[0] for item in ordered]
        seen: set[int] = set()  # ids of patterns done: a pattern pair with equal prefixes comes once
        for task, entry in self.patterns:
            key = _key(entry.prefix)
            seen.add(id(entry))
            for k in range(bisect_left(keys, key), bisect_right(keys, key + "\U0010ffff")):
                _, other_task, other = ordered[k]
                if other.is_pattern and id(other) in seen and len(other.prefix) == len(entry.prefix):
                    continue
                yield (task, entry), (other_task, other)


def _key(prefix: tuple[str, ...]) -> str:
    """``("src", "csv")`` -> ``"src/csv/"``: ordered so that everything under a prefix sorts after it."""
    return "/".join(prefix) + "/" if prefix else ""
