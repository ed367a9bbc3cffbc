"""Helpers shared by the issue-12 CLI tests (test_newcomer.py, test_newcomer_low.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.helpers import write_yaml

Cli = Callable[..., Any]


def _run_script(repo: Path, tmp_path: Path, run_cli: Cli, tasks: dict[str, list[dict]], *args: str) -> Any:
    plan = {"feature": "f", "tasks": [{"id": t, "title": t.upper(), "files": [f"{t}.py"]} for t in tasks]}
    plan_file = write_yaml(tmp_path / "plan.yaml", plan)
    script = write_yaml(tmp_path / "script.yaml", {"tasks": tasks})
    return run_cli(
        "execute", "--repo", repo, "--plan", plan_file, "--llm", "fake", "--fake-script", script, *args
    )


def _write_and_finish(path: str, content: str) -> list[dict]:
    return [
        {"tool": "write_file", "input": {"path": path, "content": content}},
        {"tool": "finish", "input": {"summary": f"wrote {path}"}},
    ]


def _two_task_plan(tmp_path: Path) -> Path:
    tasks = [{"id": "a", "title": "A", "files": ["a.py"]}, {"id": "b", "title": "B", "files": ["b.py"]}]
    return write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": tasks})


def _newest(repo: Path, run_cli: Cli) -> str:
    return str(json.loads(run_cli("runs", "--repo", repo, "--json").stdout)["runs"][-1]["run"])
