"""`agentwaves demo`: the whole product, offline, on a copy of the bundled sandbox project."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from agentwaves.errors import UsageError
from agentwaves.git.ops import git, identity_args
from agentwaves.state.events import Subscriber

FEATURE = "add email and SMS notifications"
DEFAULT_TIME_SCALE = 1.9
IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".benchmarks", ".agentwaves", "*.pyc")


@dataclass
class DemoOutcome:
    repo: Path
    plan: Any
    run: Any
    log: list[str]


def sandbox_source() -> Path:
    path = Path(str(resources.files("agentwaves").joinpath("sandbox_files")))
    if not (path / "notify").is_dir():
        raise UsageError(f"the bundled sandbox project is missing ({path}): reinstall agentwaves")
    return path


def prepare_repo(dest: Path | None) -> Path:
    """Copy the sandbox to ``dest`` (or a temp dir) and make it a git repository with one commit."""
    if dest is None:
        dest = Path(tempfile.mkdtemp(prefix="agentwaves-demo-")) / "notify"
    elif dest.exists() and any(dest.iterdir()):
        raise UsageError(f"{dest} exists and is not empty: choose a new directory for the demo")
    shutil.copytree(sandbox_source(), dest, ignore=IGNORE, dirs_exist_ok=True)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, *identity_args(dest), "commit", "-q", "-m", "notify: initial project")
    return dest


def run_demo(
    dest: Path | None, time_scale: float, subscribers: list[Subscriber], on_planned: Any = None
) -> DemoOutcome:
    from agentwaves.run.planning import draft_plan
    from agentwaves.run.session import start_run

    repo = prepare_repo(dest)
    drafted = draft_plan(repo, FEATURE, {"llm": "fake"})
    if on_planned:
        on_planned(repo, drafted)
    outcome = start_run(repo, None, {"llm": "fake", "fake_time_scale": time_scale}, subscribers)
    log = []
    if outcome.state.waves and any(w.commit for w in outcome.state.waves):
        log = git(repo, "log", "--format=%h %s", f"{outcome.state.base}..{outcome.state.branch}").splitlines()
    return DemoOutcome(repo, drafted, outcome, log)


def sandbox_tests_pass(repo: Path) -> bool:
    """True if the demo project's tests pass (its own runner: the standard library alone, no pytest)."""
    done = subprocess.run([sys.executable, "run_tests.py"], cwd=repo, capture_output=True)
    return done.returncode == 0
