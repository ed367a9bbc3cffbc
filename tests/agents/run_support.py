"""Set-up the claude-code and codex failure tests share: plans, leftover agent processes, kill -9 and
resume of a two-task run."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.helpers import git, latest_state, wave_commits, write_yaml
from tests.reliability.support import spawn, tasks_of, wait_for


def plan(tmp_path: Path, *tasks: dict[str, Any]) -> Path:
    return write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": list(tasks)})


def a_then_b(tmp_path: Path) -> Path:
    """Two tasks, ``b`` after ``a``, writing ``a.txt`` and ``b.txt``."""
    return plan(
        tmp_path,
        {"id": "a", "title": "A", "files": ["a.txt"]},
        {"id": "b", "title": "B", "files": ["b.txt"], "depends_on": ["a"]},
    )


def leftover(path: Path) -> list[str]:
    """Processes whose command line names ``path`` (an agent's bubblewrap and the agent)."""
    out = subprocess.run(["pgrep", "-af", str(path)], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def kill_9_mid_task_then_resume(
    repo: Path, tmp_path: Path, run_cli: Any, agent: str, b_called: Callable[[], bool]
) -> None:
    """``execute --agent AGENT`` of :func:`a_then_b`, killed with SIGKILL once ``b_called()`` (b's agent
    is in its first API call, which the stub lets hang): no agent process is left, b is still
    ``running`` in the state, and ``resume`` finishes both tasks, one wave commit each, b's file ``B``."""
    proc = spawn("execute", "--agent", agent, "--repo", repo, "--plan", a_then_b(tmp_path))
    try:
        wait_for(b_called, "b's first API call", timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    wait_for(lambda: leftover(repo / ".agentwaves" / "worktrees") == [], "the agent to die", timeout=10)
    assert tasks_of(latest_state(repo))["b"]["state"] == "running"
    res = run_cli("resume", "--repo", repo)
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    assert [t["state"] for t in tasks_of(state).values()] == ["done", "done"]
    assert len(wave_commits(repo, state)) == 2
    assert git(repo, "show", f"{state['branch']}:b.txt") == "B"
