"""The CLI's error contract: one line on stderr, exit 2 for bad input, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nope"], "No such command 'nope'"),
        (["logs"], "Missing argument"),  # `analyze` alone reads .agentwaves/plan.yaml
        (["analyze", str(EXAMPLES / "article.yaml"), "--max-agents", "0"], "--max-agents"),
        (["execute", "--schedule", "fastest"], "unknown schedule 'fastest'"),
        (["execute", "--waves", "--sequential"], "choose one of"),
        (["status", "--repo", "/"], "not a git repository"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run_cli, args: list[str], needle: str) -> None:
    res = run_cli(*args)
    assert res.exit_code == 2, res.stderr
    assert res.stderr.startswith("agentwaves: error: ")
    assert needle in res.stderr
    assert res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr + res.stdout


def test_no_arguments_shows_help(run_cli) -> None:
    res = run_cli()
    assert res.exit_code == 0 and "Commands" in res.stdout


def test_execute_outside_a_repository_and_without_a_plan(run_cli, make_repo, tmp_path) -> None:
    res = run_cli("execute", "--repo", tmp_path, "--llm", "fake")
    assert res.exit_code == 2 and "not a git repository" in res.stderr
    repo = make_repo()
    res = run_cli("execute", "--repo", repo, "--llm", "fake")
    assert res.exit_code == 2 and "no plan at" in res.stderr and "agentwaves plan" in res.stderr
