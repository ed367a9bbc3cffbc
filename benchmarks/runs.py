"""Real in-process runs with the fake LLM, for the makespan and cost benchmarks.

Each run gets a fresh repository (one commit: a README) so the runs of a case do not share state; the plan
file lives beside the repository, not in it. Git's identity comes from ``-c`` flags and the environment,
never from the user's configuration.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentwaves.plan import Plan
from agentwaves.plan.load import dump_plan_yaml
from agentwaves.run.session import RunOutcome, start_run

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@contextmanager
def git_identity() -> Iterator[None]:
    """Set a neutral git identity in the environment for the duration (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in _GIT_ENV}
    os.environ.update(_GIT_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def make_repo(path: Path) -> Path:
    """A git repository at ``path`` with one commit (a README), on branch ``main``."""
    path.mkdir(parents=True)
    env = {**os.environ, **_GIT_ENV}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "gc.auto", "0")
    git("config", "commit.gpgsign", "false")
    (path / "README.md").write_text("# benchmark repository\n")
    git("add", "-A")
    git("commit", "-q", "-m", "initial")
    return path


@dataclass(frozen=True)
class Measured:
    """One finished run: wall time (s), its state, and per-task usage from ``state.json``."""

    ok: bool
    makespan_s: float
    tasks: int
    error: str | None
    usage: dict[str, dict[str, float]]  # task id -> token counters and cost_usd
    waves: list[list[str]]  # task ids per wave, in order
    started: dict[str, str]  # task id -> ISO start time


def execute(
    plan: Plan, schedule: str, agents: int, time_scale: float, workdir: Path | None = None
) -> Measured:
    """Run ``plan`` once with the fake LLM on a fresh repository and return what was measured."""
    with tempfile.TemporaryDirectory(prefix="agentwaves-bench-", dir=workdir) as name:
        tmp = Path(name)
        repo = make_repo(tmp / "repo")
        plan_path = tmp / "plan.yaml"
        plan_path.write_text(dump_plan_yaml(plan))
        overrides: dict[str, Any] = {
            "llm": "fake",
            "fake_time_scale": time_scale,
            "max_agents": agents,
            "schedule": schedule,
            "sandbox": "none",
        }
        with git_identity():
            outcome = start_run(repo, plan_path, overrides)
        return measured(outcome)


def measured(outcome: RunOutcome) -> Measured:
    state = outcome.state
    usage: dict[str, dict[str, float]] = {}
    waves: list[list[str]] = []
    started: dict[str, str] = {}
    for wave in state.waves:
        ids: list[str] = []
        for group in wave.groups:
            for ts in group.tasks:
                ids.append(ts.id)
                if ts.started:
                    started[ts.id] = ts.started
                if ts.usage:
                    usage[ts.id] = {
                        k: float(v) for k, v in ts.usage.items() if k.endswith("tokens") or k == "cost_usd"
                    }
        waves.append(ids)
    return Measured(
        ok=outcome.ok,
        makespan_s=float(state.makespan_s or 0.0),
        tasks=sum(len(w) for w in waves),
        error=state.error,
        usage=usage,
        waves=waves,
        started=started,
    )
