"""`agentwaves analyze` from the command line: tables, --json, --markdown, and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_json_for_seed_example_1(run_cli: Callable[..., Any]) -> None:
    result = run_cli("analyze", EXAMPLES / "example1.pipeline", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["estimates"] == {"serial": 210, "groups_sequential": 120, "theoretical": 90, "practical": 90}
    assert [[g["tasks"] for g in w["groups"]] for w in data["waves"]] == [
        [["1"]],
        [["2", "3"]],
        [["4"]],
        [["5", "6"], ["7", "8"]],
        [["9"]],
    ]
    assert data["waves"][3]["groups"][1] | {"after": {}} == {
        "name": "mobile-features",
        "tasks": ["7", "8"],
        "after": {},
        "gate": False,
    }
    assert data["serialization_points"] == [] and len(data["warnings"]) == 1


@pytest.mark.parametrize(("name", "practical"), [("example2.pipeline", 50), ("example3.pipeline", 130)])
def test_json_for_other_seed_examples(run_cli: Callable[..., Any], name: str, practical: int) -> None:
    result = run_cli("analyze", EXAMPLES / name, "--json")
    assert json.loads(result.stdout)["estimates"]["practical"] == practical


def test_article_with_max_agents(run_cli: Callable[..., Any]) -> None:
    data = json.loads(run_cli("analyze", EXAMPLES / "article.yaml", "--json", "--max-agents", "3").stdout)
    assert data["estimates"] == {"serial": 7, "groups_sequential": 6, "theoretical": 4, "practical": 5}
    assert data["serialization_points"][0] == {
        "tasks": ["2", "3"],
        "reason": "both write src/git-workflow-enforcer.ts",
        "resolution": "same group",
    }
    assert data["max_agents"] == 3


def test_default_output_is_tables(run_cli: Callable[..., Any]) -> None:
    result = run_cli("analyze", EXAMPLES / "billing.yaml")
    assert result.exit_code == 0, result.stderr
    for text in (
        "Waves",
        "exporters",
        "Estimates",
        "practical",
        "Critical path",
        "Serialization points",
        "both write src/billing/export.py",
    ):
        assert text in result.stdout, text


def test_markdown_file(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "parallelization-analysis.md"
    result = run_cli("analyze", EXAMPLES / "article.yaml", "--markdown", out, "--json")
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)  # --json output stays pure JSON
    text = out.read_text()
    assert "```mermaid" in text and "## Serialization points" in text


BAD = {
    "invalid.yaml": ("tasks: [\n", "invalid YAML"),
    "unknown.yaml": ("tasks:\n  - {id: a, title: A, colour: red}\n", "unknown field 'colour'"),
    "dup.yaml": ("tasks:\n  - {id: a, title: A}\n  - {id: a, title: B}\n", "duplicate task id 'a'"),
    "dep.yaml": (
        "tasks:\n  - {id: csv, title: A, depends_on: [nope]}\n",
        "task 'csv' depends on unknown task 'nope'",
    ),
    "cycle.yaml": (
        "tasks:\n  - {id: a, title: A, depends_on: [b]}\n  - {id: b, title: B, depends_on: [a]}\n",
        "dependency cycle: a -> b -> a",
    ),
    "gate.yaml": ("tasks:\n  - {id: g, title: G, kind: gate}\n", "gate 'g' has no command"),
    "negative.yaml": ("tasks:\n  - {id: a, title: A, estimate: -1}\n", "estimate must not be negative"),
    "rows.pipeline": (
        "1 | p | - | auto | - | 10 | A\n2 | p | - | auto | 10 | B\n",
        "rows.pipeline:2: expected 7",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(run_cli: Callable[..., Any], tmp_path: Path, name: str) -> None:
    text, expected = BAD[name]
    path = tmp_path / name
    path.write_text(text)
    result = run_cli("analyze", path, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentwaves: error: "), result.stderr
    assert expected in lines[0] and name in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_file(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    result = run_cli("analyze", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"agentwaves: error: {tmp_path / 'nope.yaml'}: no such file"


def test_unwritable_markdown(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    result = run_cli("analyze", EXAMPLES / "article.yaml", "--markdown", tmp_path / "no" / "dir" / "x.md")
    assert result.exit_code == 2 and "cannot write" in result.stderr
