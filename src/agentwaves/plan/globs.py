"""Predicted writes as patterns: paths, directories (trailing ``/``) and globs, and when two overlap.

A glob's ``*``, ``?`` and ``[...]`` work inside one path component; a ``**`` component matches any
number of components (zero included). A directory ``src/`` covers everything under it (``src/**``). Two
entries overlap when some path matches both; for two globs that is decided exactly on the patterns
(a product of the two automata), not by trying paths.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import NamedTuple

_NEEDS_WORK = re.compile(r"[*?\[\\]|//|^/|(^|/)\.(/|$)|/$")


class CharSet(NamedTuple):
    """What one pattern character may be: any (``?``), one literal, or a ``[...]`` class."""

    kind: str  # "any" | "lit" | "set"
    char: str = ""  # with "lit"
    negated: bool = False  # with "set"
    ranges: tuple[tuple[str, str], ...] = ()  # with "set": inclusive (lo, hi)


Token = str | CharSet  # "*" (any run of characters) or one character
_ANY = CharSet("any")


class Entry(NamedTuple):
    """One normalized ``files`` entry (a named tuple: thousands are made per analysis)."""

    text: str  # normalized, as shown to people: "src/export.py", "src/csv/", "src/**/*.py"
    kind: str  # "path" | "dir" | "glob"
    parts: tuple[str, ...]  # components; a dir ends with "**"
    prefix: tuple[str, ...]  # the literal components before the first pattern component

    @property
    def is_pattern(self) -> bool:
        return self.kind != "path"


def parse_entry(raw: str) -> Entry:
    """Normalize ``raw``: backslashes to '/', no '.' or empty components; classify it."""
    text = raw.strip()
    if not _NEEDS_WORK.search(text):  # a plain path: the common case, kept cheap
        parts = tuple(text.split("/"))
        return Entry(text, "path", parts, parts)
    if "\\" in text:
        text = text.replace("\\", "/")
    is_dir = text.endswith("/")
    parts = tuple(text.split("/"))
    clean = "" not in parts and "." not in parts
    if not clean:
        parts = tuple(p for p in parts if p not in ("", "."))
    magic_at = None
    if "*" in text or "?" in text or "[" in text:
        magic_at = next((i for i, p in enumerate(parts) if _is_magic(p)), None)
    if is_dir or not parts:
        shown = "/".join(parts) + "/" if parts else "./"
        literal = parts if magic_at is None else parts[:magic_at]
        return Entry(shown, "dir" if magic_at is None else "glob", (*parts, "**"), literal)
    shown = text if clean else "/".join(parts)
    if magic_at is None:
        return Entry(shown, "path", parts, parts)
    return Entry(shown, "glob", parts, parts[:magic_at])


def _is_magic(part: str) -> bool:
    if "*" in part or "?" in part:
        return True
    return "[" in part and "]" in part[part.index("[") + 1 :]


def overlaps(a: Entry, b: Entry) -> bool:
    """True when some path is matched by both entries."""
    if not a.is_pattern and not b.is_pattern:
        return a.parts == b.parts
    return _seq_overlap(a.parts, a.is_pattern, b.parts, b.is_pattern)


def _seq_overlap(a: tuple[str, ...], a_pat: bool, b: tuple[str, ...], b_pat: bool) -> bool:
    """Do two component sequences (``**`` = any number of components) match a common path? Bottom-up DP."""
    na, nb = len(a), len(b)
    nxt = [False] * (nb + 1)  # row i + 1
    for i in range(na, -1, -1):
        row = [False] * (nb + 1)
        for j in range(nb, -1, -1):
            if i == na and j == nb:
                row[j] = True
            elif a_pat and i < na and a[i] == "**":
                row[j] = nxt[j] or (j < nb and row[j + 1])
            elif b_pat and j < nb and b[j] == "**":
                row[j] = row[j + 1] or (i < na and nxt[j])
            elif i < na and j < nb:
                row[j] = nxt[j + 1] and _component_overlap(a[i], a_pat, b[j], b_pat)
            else:
                row[j] = False
        nxt = row
    return nxt[0]


def _component_overlap(x: str, x_pat: bool, y: str, y_pat: bool) -> bool:
    if not x_pat and not y_pat:
        return x == y
    if not y_pat:
        return fnmatchcase(y, x) if _is_magic(x) else x == y
    if not x_pat:
        return fnmatchcase(x, y) if _is_magic(y) else x == y
    return patterns_intersect(x, y)


@lru_cache(maxsize=4096)
def patterns_intersect(p: str, q: str) -> bool:
    """True when one string (without '/') matches both fnmatch patterns ``p`` and ``q``."""
    tp, tq = tokenize(p), tokenize(q)
    np_, nq = len(tp), len(tq)
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == np_ and j == nq:
            return True
        pi: Token | None = tp[i] if i < np_ else None
        qj: Token | None = tq[j] if j < nq else None
        if pi == "*":
            stack.append((i + 1, j))
        if qj == "*":
            stack.append((i, j + 1))
        if pi is None or qj is None or (pi == "*" and qj == "*"):
            continue
        cp = pi if isinstance(pi, CharSet) else _ANY
        cq = qj if isinstance(qj, CharSet) else _ANY
        if _sets_intersect(cp, cq):
            stack.append((i if pi == "*" else i + 1, j if qj == "*" else j + 1))
    return False


@lru_cache(maxsize=4096)
def tokenize(pattern: str) -> tuple[Token, ...]:
    """Split an fnmatch pattern into tokens, following :func:`fnmatch.translate`'s reading of it."""
    out: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != "*":
                out.append("*")
        elif c == "?":
            out.append(_ANY)
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(CharSet("lit", "["))
                continue
            body = pattern[i:j]
            i = j + 1
            negated = body.startswith("!")
            body = body[1:] if negated else body
            ranges: list[tuple[str, str]] = []
            k = 0
            while k < len(body):
                if k + 2 < len(body) and body[k + 1] == "-":
                    if body[k] <= body[k + 2]:
                        ranges.append((body[k], body[k + 2]))
                    k += 3
                else:
                    ranges.append((body[k], body[k]))
                    k += 1
            out.append(CharSet("set", negated=negated, ranges=tuple(ranges)))
        else:
            out.append(CharSet("lit", c))
    return tuple(out)


def _sets_intersect(x: CharSet, y: CharSet) -> bool:
    if x.kind == "any":
        return _nonempty(y)
    if y.kind == "any":
        return _nonempty(x)
    if x.kind == "lit" and y.kind == "lit":
        return x.char == y.char
    if x.kind == "lit":
        return _contains(y, x.char)
    if y.kind == "lit":
        return _contains(x, y.char)
    if x.negated and y.negated:
        return True  # each excludes finitely many characters
    if x.negated:
        return _has_uncovered(y.ranges, x.ranges)
    if y.negated:
        return _has_uncovered(x.ranges, y.ranges)
    return any(a <= d and c <= b for a, b in x.ranges for c, d in y.ranges)


def _nonempty(s: CharSet) -> bool:
    return s.kind != "set" or s.negated or bool(s.ranges)


def _contains(s: CharSet, ch: str) -> bool:
    inside = any(lo <= ch <= hi for lo, hi in s.ranges)
    return inside != s.negated


def _has_uncovered(wanted: tuple[tuple[str, str], ...], excluded: tuple[tuple[str, str], ...]) -> bool:
    """True when some character lies in a ``wanted`` range and in no ``excluded`` range."""
    cuts = sorted((ord(lo), ord(hi)) for lo, hi in excluded)
    for lo, hi in wanted:
        cur = ord(lo)
        for elo, ehi in cuts:
            if ehi < cur:
                continue
            if elo > cur:
                break
            cur = ehi + 1
            if cur > ord(hi):
                break
        if cur <= ord(hi):
            return True
    return False
