"""Helpers for end-to-end runs: write plans and fake scripts, read state, inspect git."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def latest_state(repo: Path) -> dict[str, Any]:
    runs = sorted((repo / ".agentwaves" / "runs").iterdir())
    return json.loads((runs[-1] / "state.json").read_text())


def wave_commits(repo: Path, state: dict[str, Any]) -> list[tuple[str, str]]:
    """(subject, body) of the integration branch's commits since the base, oldest first."""
    out = git(repo, "log", "--reverse", "--format=%H%x00%s%x00%b%x1e", f"{state['base']}..{state['branch']}")
    commits = []
    for rec in out.split("\x1e"):
        rec = rec.strip()
        if rec:
            _, subject, body = rec.split("\x00")
            commits.append((subject, body))
    return commits


def tree_files(repo: Path, rev: str) -> dict[str, str]:
    """path -> blob id of every file in ``rev``."""
    out = git(repo, "ls-tree", "-r", rev)
    files = {}
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        files[path] = meta.split()[2]
    return files


def user_snapshot(repo: Path) -> tuple[str, str, str, str]:
    """The user's current branch, its commit, the index and the working tree status."""
    return (
        git(repo, "symbolic-ref", "HEAD"),
        git(repo, "rev-parse", "HEAD"),
        git(repo, "ls-files", "-s"),
        git(repo, "status", "--porcelain", "--untracked-files=all"),
    )


def shared_file_calls(tasks: tuple[str, ...] = ("x", "y"), own_file: bool = True) -> dict[str, list[dict]]:
    """Fake-script calls per task: write ``<task>.py`` (if ``own_file``), then ``shared.txt`` (undeclared,
    the same line as every other task, so merging the tasks' groups conflicts), then finish."""

    def calls(t: str) -> list[dict]:
        own = [{"tool": "write_file", "input": {"path": f"{t}.py", "content": f"{t} = 1\n"}}]
        return [
            *(own if own_file else []),
            {"tool": "write_file", "input": {"path": "shared.txt", "content": f"top\nfrom {t}\n"}},
            {"tool": "finish", "input": {"summary": f"{t} done"}},
        ]

    return {t: calls(t) for t in tasks}


def sweep_points(names: list[str], stride: int, offset: int = 0, first: int = 1) -> list[int]:
    """Which crash points (1-based) of a run a sweep kills at: the first and the last point of every kind
    (``before task commit``, ``after wave merge`` ...), and every ``stride``-th point from ``first +
    offset``. ``AGENTWAVES_SWEEP=full`` sweeps every point from ``first`` (slow: minutes per sweep)."""
    import os

    if os.environ.get("AGENTWAVES_SWEEP") == "full":
        return list(range(first, len(names) + 1))
    chosen = set(range(first + offset, len(names) + 1, stride))
    for kind in set(names[first - 1 :]):
        at = [i for i, name in enumerate(names, 1) if name == kind and i >= first]
        chosen |= {at[0], at[-1]}
    return sorted(chosen)
