"""Plans and fake scripts for the feedback-loop tests: three groups, a gate, scripted agents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.helpers import write_yaml

# fails (and says which file) when a file holds BROKEN
GATE = 'if cat a.py b.py c.py 2>/dev/null | grep BROKEN; then echo "gate: BROKEN found"; exit 1; fi'


def write(path: str, content: str, summary: str = "done") -> list[dict[str, Any]]:
    return [
        {"tool": "write_file", "input": {"path": path, "content": content}},
        {"tool": "finish", "input": {"summary": summary}},
    ]


def three_groups_plan(tmp: Path, **gate: Any) -> Path:
    return write_yaml(
        tmp / "plan.yaml",
        {
            "tasks": [
                {"id": "a", "title": "A", "files": ["a.py"]},
                {"id": "b", "title": "B", "files": ["b.py"]},
                {"id": "c", "title": "C", "files": ["c.py"]},
                {
                    "id": "check",
                    "title": "Check",
                    "kind": "gate",
                    "command": GATE,
                    "depends_on": ["a", "b", "c"],
                }
                | gate,
            ]
        },
    )


def script(tmp: Path, name: str = "s.yaml", c: str = "BROKEN = 1\n", **extra: Any) -> Path:
    tasks = {"a": write("a.py", "a = 1\n"), "b": write("b.py", "b = 1\n"), "c": write("c.py", c)}
    return write_yaml(tmp / name, {"tasks": tasks, **extra})


def groups_of(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for w in state["waves"] for g in w["groups"]}


def group_of_task(state: dict[str, Any], task: str) -> dict[str, Any]:
    return next(g for w in state["waves"] for g in w["groups"] if any(t["id"] == task for t in g["tasks"]))
