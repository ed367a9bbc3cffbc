"""The Markdown analysis and its Mermaid helpers."""

from __future__ import annotations

import re

from agentwaves.plan import analyze, load_plan
from agentwaves.plan.report import analysis_markdown, md_cell, mermaid_id, mermaid_label, suggestions

from .helpers import EXAMPLES, make_plan


def test_mermaid_ids_are_safe_and_distinct() -> None:
    ids = ["1", "a.b", "a_b", "a-b", "end", "é", "a b"]
    made = [mermaid_id(i, "t") for i in ids]
    assert len(set(made)) == len(made)
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", m) for m in made)


def test_mermaid_labels_escape_quotes_and_markup() -> None:
    label = mermaid_label('say "hi" <b>#1</b>\nnext')
    assert label.startswith('"') and label.endswith('"') and '"' not in label[1:-1]
    assert "<" not in label and "\n" not in label
    assert md_cell("a | b\nc") == "a \\| b c"


def test_markdown_has_waves_graph_table_points_and_suggestions() -> None:
    a = analyze(load_plan(EXAMPLES / "article.yaml"))
    md = analysis_markdown(a)
    assert md.startswith("# Parallelization analysis: Git workflow plugin enhancement")
    for heading in (
        "## Waves",
        "## Dependency graph",
        "## Estimates",
        "## Serialization points",
        "## Suggestions",
    ):
        assert heading in md
    assert "```mermaid\nflowchart TB" in md
    assert 'subgraph W1["Wave 1"]' in md and 'subgraph W4["Wave 4"]' in md
    assert "t_1 --> t_2" in md
    assert 't_2 -. "same file" .- t_3' in md and 't_3 -. "same file" .- t_4' in md
    assert "t_2 -. " + '"same file" .- t_4' not in md
    assert (
        "| Serial | 7 | 1.00x |" in md
        and "| Theoretical | 4 | 1.75x |" in md
        and "| Practical | 5 | 1.40x |" in md
    )
    assert "| 2, 3 | both write src/git-workflow-enforcer.ts | same group |" in md


def test_mermaid_nodes_are_declared_once_inside_their_wave() -> None:
    md = analysis_markdown(analyze(load_plan(EXAMPLES / "example1.pipeline")))
    for tid in map(str, range(1, 10)):
        assert len(re.findall(rf"^\s+t_{tid}\[", md, flags=re.M)) == 1
    assert 'subgraph g_web_2d_features["web-features"]' in md


def test_a_file_that_serializes_three_tasks_is_worth_splitting() -> None:
    plan = make_plan(*({"id": f"t{i}", "files": ["src/constants.py", f"src/m{i}.py"]} for i in range(3)))
    tips = suggestions(analyze(plan))
    assert any(t.startswith("src/constants.py serializes 3 tasks (t0, t1 and t2): split it") for t in tips)


def test_more_agents_suggestion() -> None:
    plan = make_plan(*({"id": f"t{i}", "files": [f"f{i}.py"], "estimate": 10} for i in range(6)))
    tips = analyze(plan, max_agents=2).suggestions
    assert any("--max-agents 6" in t and "10 minutes instead of 30" in t for t in tips)


def test_large_plans_skip_the_diagram() -> None:
    plan = make_plan(*({"id": f"t{i}", "files": [f"f{i}.py"]} for i in range(400)))
    md = analysis_markdown(analyze(plan))
    assert "```mermaid" not in md and "more than a diagram can show" in md


def test_benchmark_quick_run() -> None:
    import importlib.util

    path = EXAMPLES.parent / "benchmarks" / "analysis.py"
    spec = importlib.util.spec_from_file_location("bench_analysis", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.run(quick=True)
    assert result["tasks"] == 1000 and result["dependencies"] > 3500 and result["conflicts"] > 0
    assert isinstance(result["analysis_ms"], float)
