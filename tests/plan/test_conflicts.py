"""The conflict checker: what overlaps, the reasons it gives, and that its index misses nothing."""

from __future__ import annotations

from fnmatch import fnmatchcase
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwaves.plan.conflicts import find_conflicts
from agentwaves.plan.globs import overlaps, parse_entry

from .helpers import make_plan


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        ("src/export.py", "src/export.py", True),
        ("src/export.py", "./src//export.py", True),
        ("src/export.py", "src/import.py", False),
        ("src/", "src/util/helpers.py", True),
        ("src/csv/", "src/csvx/a.py", False),
        ("src/**/*.py", "src/util/helpers.py", True),
        ("src/**/*.py", "src/helpers.py", True),
        ("src/**/*.py", "lib/helpers.py", False),
        ("src/*.py", "src/util/helpers.py", False),
        ("src/**/*.py", "src/**/test_*.py", True),
        ("src/*.py", "src/*.ts", False),
        ("src/a*", "src/*b", True),
        ("a/[0-9].txt", "a/[!0-9].txt", False),
        ("a/[a-c].txt", "a/b.txt", True),
        ("docs/", "docs/**/*.md", True),
        ("**", "anything/at/all.txt", True),
        ("pages/[id].tsx", "pages/[id].tsx", True),
    ],
)
def test_overlaps(x: str, y: str, expected: bool) -> None:
    ex, ey = parse_entry(x), parse_entry(y)
    assert overlaps(ex, ey) is expected
    assert overlaps(ey, ex) is expected


def test_reasons() -> None:
    plan = make_plan(
        {"id": "csv", "files": ["src/export.py", "src/csv/"], "resources": ["db:invoices"]},
        {"id": "json", "files": ["src/export.py"]},
        {"id": "lint", "files": ["src/**/*.py"]},
        {"id": "load", "files": ["etl/load.py"], "resources": ["db:invoices"]},
        {"id": "docs", "files": ["docs/x.md"]},
    )
    found = {(c.a, c.b): c.reason for c in find_conflicts(plan)}
    assert found[("csv", "json")] == "both write src/export.py"
    assert found[("csv", "load")] == "both use db:invoices"
    assert found[("json", "lint")] == "src/**/*.py overlaps src/export.py"
    assert "src/csv/ overlaps src/**/*.py" in found[("csv", "lint")]
    assert "src/**/*.py overlaps src/export.py" in found[("csv", "lint")]
    assert not any("docs" in pair for pair in found)


def test_a_pair_with_several_shared_files_is_one_conflict() -> None:
    plan = make_plan({"id": "a", "files": ["x.py", "y.py", "z.py"]}, {"id": "b", "files": ["x.py", "y.py"]})
    (conflict,) = find_conflicts(plan)
    assert conflict.reason == "both write x.py and y.py" and conflict.subjects == ("x.py", "y.py")


# ----------------------------------------------------------------- the index agrees with brute force

POOL = [
    "src/a.py",
    "src/b.py",
    "src/util/x.py",
    "src/",
    "src/util/",
    "src/*.py",
    "src/**/*.py",
    "src/**",
    "lib/c.py",
    "lib/",
    "lib/*.ts",
    "*.md",
    "README.md",
    "docs/**/*.md",
    "docs/guide.md",
    "[ab].py",
    "a.py",
    "src/u*/x.py",
    "tests/test_?.py",
    "tests/test_a.py",
]
RESOURCES = ["db:x", "db:y", "port:8080"]


def brute_force(plan) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    out = set()
    for s, t in combinations(plan.tasks, 2):
        files = any(overlaps(parse_entry(f), parse_entry(g)) for f in s.files for g in t.files)
        if files or set(s.resources) & set(t.resources):
            out.add((s.id, t.id))
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(POOL), max_size=3), st.lists(st.sampled_from(RESOURCES), max_size=1)
        ),
        min_size=1,
        max_size=8,
    )
)
def test_index_finds_exactly_the_brute_force_pairs(spec: list[tuple[list[str], list[str]]]) -> None:
    plan = make_plan(*({"id": f"t{i}", "files": f, "resources": r} for i, (f, r) in enumerate(spec)))
    assert {(c.a, c.b) for c in find_conflicts(plan)} == brute_force(plan)


# --------------------------------------------------- overlaps agrees with matching concrete paths

PATHS = [
    "src/a.py",
    "src/b.py",
    "src/util/x.py",
    "src/util/deep/x.py",
    "lib/c.py",
    "lib/c.ts",
    "README.md",
    "docs/guide.md",
    "docs/api/ref.md",
    "a.py",
    "b.py",
    "tests/test_a.py",
    "tests/test_bb.py",
    "src",
]


def matches(path: str, pattern: str) -> bool:
    """A reference matcher: one component per fnmatch, '**' for any number of components."""
    entry = parse_entry(pattern)
    parts, pat = path.split("/"), entry.parts

    def go(i: int, j: int) -> bool:
        if j == len(pat):
            return i == len(parts)
        if pat[j] == "**":
            return any(go(k, j + 1) for k in range(i, len(parts) + 1))
        if i == len(parts):
            return False
        ok = fnmatchcase(parts[i], pat[j]) if entry.kind != "path" else parts[i] == pat[j]
        return ok and go(i + 1, j + 1)

    return go(0, 0)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(POOL), st.sampled_from(POOL))
def test_a_common_concrete_path_implies_overlap(x: str, y: str) -> None:
    if any(matches(p, x) and matches(p, y) for p in PATHS):
        assert overlaps(parse_entry(x), parse_entry(y))
    if parse_entry(x).kind == "path":  # against a concrete path, overlap is exactly matching
        assert overlaps(parse_entry(x), parse_entry(y)) == matches(parse_entry(x).text, y)
