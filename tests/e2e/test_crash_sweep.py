"""Kill -9 at every state transition, then resume: the run always finishes as if nothing happened."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.forkserver import ForkServer, on_a_server, shared_servers
from tests.e2e.helpers import git, sweep_points, tree_files, user_snapshot, wave_commits, write_yaml

PLAN = {
    "feature": "crash sweep",
    "tasks": [
        {"id": "a", "title": "A", "files": ["src/a.py"]},
        {"id": "b", "title": "B", "files": ["src/b.py"]},
        {"id": "c", "title": "C", "files": ["src/c.py", "src/a.py"], "depends_on": ["a", "b"]},
        {"id": "d", "title": "D", "files": ["docs/d.md"], "depends_on": ["c"]},
    ],
}


def agentwaves(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "agentwaves", *args, "--repo", str(repo)],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def forked(
    server: ForkServer, repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """:func:`agentwaves` from a preloaded fork server (the same CLI in a new process, minus the start-up)."""
    return server.run([*args, "--repo", str(repo)], {**os.environ, **(env or {})})


def task_trailers(repo: Path) -> Counter[str]:
    """How many task commits exist per task id, over every group branch of the run."""
    out = git(
        repo, "log", "--format=%(trailers:key=Agentwaves-Task,valueonly)", "--branches=agentwaves-groups/*"
    )
    return Counter(line.strip() for line in out.splitlines() if line.strip())


def run_state(repo: Path) -> dict | None:
    runs = repo / ".agentwaves" / "runs"
    states = sorted(runs.glob("*/state.json")) if runs.exists() else []
    return json.loads(states[-1].read_text()) if states else None


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["waves", "eager"])
def test_crash_point_sweep(make_repo, tmp_path: Path, schedule: str) -> None:
    """Kill -9 at the first and last crash point of every kind and at every fourth point, the two schedules
    offset so that together they sweep every other point (eager: c opens on a stacked base while wave 1 is
    being committed). ``AGENTWAVES_SWEEP=full`` sweeps every point of both."""
    template = make_repo({"README.md": "# r\n", "src/__init__.py": ""}, name="template")
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    args = ("--plan", str(plan), "--llm", "fake", "--sandbox", "none", "--schedule", schedule)

    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    log = tmp_path / "points.log"
    res = agentwaves(reference, "execute", *args, env={"AGENTWAVES_CRASH_LOG": str(log)})
    assert res.returncode == 0, res.stderr
    points = log.read_text().splitlines()
    ref_state = run_state(reference)
    assert ref_state is not None
    ref_tree = tree_files(reference, ref_state["branch"])
    assert len(points) >= 30, f"only {len(points)} crash points"
    chosen = sweep_points([p.split(" ", 1)[1] for p in points], 4, offset=0 if schedule == "waves" else 2)
    before = user_snapshot(template)  # each point's repository is a copy of it

    def crash_and_resume(server: ForkServer, n: int) -> str | None:
        """Crash at point n, recover, check; returns None if the run never reached point n."""
        repo = tmp_path / f"crash-{n}"
        shutil.copytree(template, repo)
        crashed = forked(server, repo, "execute", *args, env={"AGENTWAVES_CRASH_AT": str(n)})
        where = f"crash point {n} ({points[n - 1]})"
        if crashed.returncode == 0:  # thread timing made this run reach fewer points
            shutil.rmtree(repo)
            return None
        assert crashed.returncode == -9, f"{where}: {crashed.stderr}{crashed.stdout[-2000:]}"
        state = run_state(repo)  # never unreadable
        # killed before the run existed: start it again; else resume it
        if state is None:
            res = forked(server, repo, "execute", *args)
        else:
            res = forked(server, repo, "resume", *args[2:])
        assert res.returncode == 0, f"{where}: {res.stderr}"
        state = run_state(repo)
        assert state is not None and state["state"] == "done", where
        commits = wave_commits(repo, state)
        assert [s.split()[2] for s, _ in commits] == [str(w["index"]) for w in state["waves"]], where
        assert tree_files(repo, state["branch"]) == ref_tree, where
        assert all(count == 1 for count in task_trailers(repo).values()), f"{where}: a task ran twice"
        assert user_snapshot(repo) == before, where
        shutil.rmtree(repo)
        return where

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(on_a_server(shared_servers(2), crash_and_resume), chosen))
    survived = [r for r in results if r]
    print(f"{schedule}: crash points survived: {len(survived)}/{len(survived)} (of {len(chosen)} swept)")
    assert len(survived) >= len(chosen) * 3 // 4


FEEDBACK_GATE = 'if cat a.py b.py c.py 2>/dev/null | grep BROKEN; then echo "gate: BROKEN found"; exit 1; fi'
FEEDBACK_PLAN = {
    "feature": "crash sweep over culprit search and repair",
    "tasks": [
        {"id": "a", "title": "A", "files": ["a.py"]},
        {"id": "b", "title": "B", "files": ["b.py"]},
        {"id": "c", "title": "C", "files": ["c.py"]},
        {
            "id": "check",
            "title": "Check",
            "kind": "gate",
            "command": FEEDBACK_GATE,
            "depends_on": ["a", "b", "c"],
        },
        {"id": "d", "title": "D", "files": ["d.md"], "depends_on": ["check"]},
    ],
}


def _calls(path: str, content: str) -> list[dict]:
    return [
        {"tool": "write_file", "input": {"path": path, "content": content}},
        {"tool": "finish", "input": {"summary": f"wrote {path}"}},
    ]


@pytest.mark.slow
def test_crash_sweep_culprit_search_and_repair(make_repo, tmp_path: Path) -> None:
    """Kill -9 at crash points from the first culprit test on (the search, the repair, the recommit,
    the gate again): resume always ends with the repaired wave, as the uninterrupted run. (All 54
    points pass too, with ``AGENTWAVES_SWEEP=full``; the suite sweeps every fourth and the first and last
    of each kind.)"""
    template = make_repo({"README.md": "# r\n"}, name="template")
    plan = write_yaml(tmp_path / "plan.yaml", FEEDBACK_PLAN)
    script = {
        "tasks": {
            "a": _calls("a.py", "a = 1\n"),
            "b": _calls("b.py", "b = 1\n"),
            "c": _calls("c.py", "BROKEN\n"),
        },
        "repairs": {"c": [_calls("c.py", "c = 'fixed'\n")]},
    }
    args = ("--plan", str(plan), "--llm", "fake", "--sandbox", "bwrap")
    args += ("--fake-script", str(write_yaml(tmp_path / "script.yaml", script)))
    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    log = tmp_path / "points.log"
    res = agentwaves(reference, "execute", *args, env={"AGENTWAVES_CRASH_LOG": str(log)})
    assert res.returncode == 0, res.stderr
    points = log.read_text().splitlines()
    names = [p.split(" ", 1)[1] for p in points]
    for new in (
        "before culprit test",
        "before repair commit",
        "after repair",
        "before recommit",
        "after recommit",
    ):
        assert new in names, new
    first = names.index("before culprit test") + 1
    ref_state = run_state(reference)
    assert ref_state is not None
    ref_tree = tree_files(reference, ref_state["branch"])
    assert git(reference, "show", f"{ref_state['branch']}:c.py") == "c = 'fixed'"

    def crash_and_resume(server: ForkServer, n: int) -> str | None:
        repo = tmp_path / f"crash-{n}"
        shutil.copytree(template, repo)
        crashed = forked(server, repo, "execute", *args, env={"AGENTWAVES_CRASH_AT": str(n)})
        where = f"crash point {n} ({points[n - 1]})"
        if crashed.returncode == 0:
            shutil.rmtree(repo)
            return None
        assert crashed.returncode == -9, f"{where}: {crashed.stderr}"
        res = forked(server, repo, "resume")
        assert res.returncode == 0, f"{where}: {res.stderr}"
        state = run_state(repo)
        assert state is not None and state["state"] == "done", where
        commits = wave_commits(repo, state)
        assert [s.split()[2] for s, _ in commits] == [str(w["index"]) for w in state["waves"]], where
        assert tree_files(repo, state["branch"]) == ref_tree, where
        assert all(count == 1 for count in task_trailers(repo).values()), f"{where}: a task ran twice"
        shutil.rmtree(repo)
        return where

    chosen = sweep_points(names, 4, first=first)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(on_a_server(shared_servers(2), crash_and_resume), chosen))
    survived = [r for r in results if r]
    print(f"feedback: crash points survived: {len(survived)}/{len(survived)} (of {len(chosen)} swept)")
    assert len(survived) >= len(chosen) // 2
