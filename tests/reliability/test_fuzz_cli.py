"""`agentwaves analyze` through the CLI on random input: exit 0 or 2, one line on stderr, never a traceback.

The plan loader and the pipeline importer are fuzzed directly in tests/plan/test_properties.py; this checks
the whole command (file reading, format detection, analysis, rendering, error handling) on top of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SUFFIXES = st.sampled_from([".yaml", ".yml", ".pipeline", ".txt", ".table", ""])
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="|\n\r"), max_size=12
)
pipeline_rows = st.lists(st.lists(cell, min_size=0, max_size=9).map(" | ".join), max_size=8).map("\n".join)
JUNK = st.one_of(
    st.none(), st.integers(-5, 10**9), st.floats(allow_nan=True), st.text(max_size=5),
    st.lists(st.sampled_from(["x.py", "src/", "**", "/abs", "../up", "a", "zz"]), max_size=3),
)  # fmt: skip
FIELDS = ["id", "title", "files", "depends_on", "estimate", "kind", "group", "resources", "command", "extra"]


@st.composite
def plan_like(draw: st.DrawFn) -> str:
    """A valid plan (ids, files, acyclic dependencies), then maybe a few fields replaced by junk."""
    n = draw(st.integers(1, 6))
    ids = [f"t{i}" for i in range(n)]
    tasks: list[dict[str, Any]] = []
    for i, tid in enumerate(ids):
        task: dict[str, Any] = {"id": tid, "title": draw(st.text(min_size=1, max_size=8))}
        task["files"] = draw(st.lists(st.sampled_from(["a.py", "b.py", "src/", "src/*.py", "docs/x.md"]),
                                      max_size=2, unique=True))  # fmt: skip
        task["depends_on"] = draw(st.lists(st.sampled_from(ids[:i]), unique=True)) if i else []
        task["estimate"] = draw(st.integers(0, 30))
        if draw(st.booleans()):
            task["resources"] = draw(st.lists(st.sampled_from(["db:x", "port:1"]), max_size=1))
        tasks.append(task)
    for _ in range(draw(st.integers(0, 2))):
        victim = tasks[draw(st.integers(0, n - 1))]
        victim[draw(st.sampled_from(FIELDS))] = draw(JUNK)
    return yaml.safe_dump({"feature": draw(st.text(max_size=10)), "tasks": tasks}, sort_keys=False)


def check(run_cli: Callable[..., Any], path: Path, data: bytes) -> None:
    path.write_bytes(data)
    for args in (("analyze", path), ("analyze", "--json", path)):
        res = run_cli(*args)
        assert "Traceback" not in res.stdout + res.stderr
        assert res.exit_code in (0, 2), (data[:200], res.exit_code, res.stderr)
        if res.exit_code == 2:
            lines = res.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("agentwaves: error: "), res.stderr
        elif "--json" in args:
            assert isinstance(json.loads(res.stdout)["waves"], list)


@FUZZ
@given(data=st.binary(max_size=400), suffix=SUFFIXES)
def test_analyze_random_bytes(run_cli: Callable[..., Any], tmp_path: Path, data: bytes, suffix: str) -> None:
    check(run_cli, tmp_path / f"plan{suffix}", data)


@FUZZ
@given(text=st.text(max_size=300), suffix=SUFFIXES)
def test_analyze_random_text(run_cli: Callable[..., Any], tmp_path: Path, text: str, suffix: str) -> None:
    check(run_cli, tmp_path / f"plan{suffix}", text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(text=st.one_of(pipeline_rows, plan_like()), suffix=SUFFIXES)
def test_analyze_near_valid_plans(
    run_cli: Callable[..., Any], tmp_path: Path, text: str, suffix: str
) -> None:
    check(run_cli, tmp_path / f"plan{suffix}", text.encode())
