"""Runs whose git state changed under them (issue 14, items 3 and 4): a deleted integration branch, `clean
--force`, `git gc --prune=now` after a crash. Resume checks every recorded commit against git: it rebuilds
from the recorded commits when they exist, reruns what is missing, or stops with one clear line; it never
says "done" without the work.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import git, latest_state, shared_file_calls, tree_files, wave_commits
from tests.reliability.support import (
    Workspace,
    events,
    make_workspace,
    spawn,
    tasks_of,
    wait_for,
)
from tests.reliability.support import agentwaves_forked as agentwaves
from tests.reliability.test_kill_resume import blocking_task


def gate_plan(ws: Workspace, flag: Path) -> Path:
    """Wave 1: task a writes src/a.py; wave 2: a gate that passes once ``flag`` exists."""
    return ws.plan(
        [
            {"id": "a", "title": "A", "files": ["src/a.py"], "estimate": 1},
            {"id": "g", "title": "G", "kind": "gate", "command": f"test -e '{flag}'", "depends_on": ["a"]},
        ]
    )


def two_waves(ws: Workspace) -> Path:
    return ws.plan(
        [
            {"id": "a", "title": "A", "files": ["src/a.py"], "estimate": 1},
            {"id": "b", "title": "B", "files": ["src/b.py"], "depends_on": ["a"], "estimate": 1},
        ]
    )


def common(ws: Workspace) -> tuple[str | Path, ...]:
    return ("--repo", ws.repo, "--sandbox", "none")


def gc_now(repo: Path) -> None:
    """What a user's `git gc` does at its most aggressive: no reflog, no grace period."""
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")


def assert_one_line_error(res: Any, *needles: str) -> None:
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def final_files(ws: Workspace) -> dict[str, str]:
    state = latest_state(ws.repo)
    return tree_files(ws.repo, state["branch"])


def test_resume_after_the_integration_branch_was_deleted_rebuilds_it(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    flag = tmp_path / "gate-ok"
    first = agentwaves("execute", *common(ws), "--plan", gate_plan(ws, flag), "--llm", "fake")
    assert first.returncode == 1, first.stderr  # the gate failed: wave 1 committed, wave 2 not
    state = latest_state(ws.repo)
    wave1 = state["waves"][0]["commit"]
    git(ws.repo, "update-ref", "-d", f"refs/heads/{state['branch']}")
    flag.touch()
    res = agentwaves("resume", *common(ws))
    assert res.returncode == 0, res.stderr
    assert f"integration branch {state['branch']} was missing: rebuilt at {wave1[:10]}" in res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    assert "src/a.py" in final_files(ws), "done without wave 1's work"
    assert [s.split()[2] for s, _ in wave_commits(ws.repo, state)] == ["1", "2"]
    assert tasks_of(state)["a"]["attempts"] == 1


def test_resume_after_clean_force_rebuilds_from_recorded_commits_or_reruns_after_gc(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    plan = two_waves(ws)
    assert agentwaves("execute", *common(ws), "--plan", plan, "--llm", "fake").returncode == 0
    run = latest_state(ws.repo)["run_id"]
    assert agentwaves("clean", "--force", *common(ws)[:2]).returncode == 0
    assert git(ws.repo, "for-each-ref", f"refs/agentwaves/{run}/") == ""  # clean drops the pins
    # the commits still exist: resume rebuilds the branch, runs nothing
    res = agentwaves("resume", *common(ws))
    assert res.returncode == 0, res.stderr
    assert "already done" not in res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    assert {"src/a.py", "src/b.py"} <= set(final_files(ws))
    assert {t["attempts"] for t in tasks_of(state).values()} == {1}
    # now cleaned and collected: the objects are gone, so resume runs the work again
    assert agentwaves("clean", "--force", *common(ws)[:2]).returncode == 0
    gc_now(ws.repo)
    res = agentwaves("resume", *common(ws))
    assert res.returncode == 0, res.stderr
    assert "is missing: it runs again" in res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    assert {"src/a.py", "src/b.py"} <= set(final_files(ws))
    assert {t["attempts"] for t in tasks_of(state).values()} == {2}
    assert [s.split()[2] for s, _ in wave_commits(ws.repo, state)] == ["1", "2"]


def test_resume_refuses_an_integration_branch_moved_elsewhere(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    flag = tmp_path / "gate-ok"
    assert agentwaves("execute", *common(ws), "--plan", gate_plan(ws, flag), "--llm", "fake").returncode == 1
    state = latest_state(ws.repo)
    empty_tree = git(ws.repo, "hash-object", "-t", "tree", "/dev/null")
    stranger = git(ws.repo, "commit-tree", empty_tree, "-m", "unrelated")
    git(ws.repo, "update-ref", f"refs/heads/{state['branch']}", stranger)
    flag.touch()
    res = agentwaves("resume", *common(ws))
    assert res.returncode == 1
    assert_one_line_error(res, "cannot be resumed", state["branch"], "git update-ref")
    assert latest_state(ws.repo)["state"] == "failed"


def recorded_commits(state: dict[str, Any]) -> set[str]:
    out = {state["base"]}
    for w in state["waves"]:
        out |= {w["commit"]} if w["commit"] else set()
        for g in w["groups"]:
            out |= {c for c in (g["head"], g["base"]) if c}
            out |= {t["commit"] for t in g["tasks"] if t["commit"]}
    return out


@pytest.mark.slow
def test_gc_prune_now_between_a_crash_and_resume_loses_nothing(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """kill -9 while wave 2 runs; the user then deletes agentwaves' branches and runs `git gc
    --prune=now`. Every recorded commit is still reachable from refs/agentwaves/<run>/, so resume rebuilds
    wave 1 from it (task a is not run again) and finishes with one commit per wave."""
    ws = make_workspace(make_repo, tmp_path)
    flag = tmp_path / "flag-b"
    script = ws.script({"tasks": {"b": blocking_task(flag, "src/b.py", "B = 1\n")}})
    plan = two_waves(ws)
    proc = spawn("execute", *common(ws), "--plan", plan, "--llm", "fake", "--fake-script", script)
    try:
        wait_for(
            lambda: any(e["type"] == "task_started" and e.get("task") == "b" for e in events(ws.repo)),
            "task b to start (wave 1 committed)",
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    flag.touch()
    state = latest_state(ws.repo)
    run = state["run_id"]
    pinned = git(ws.repo, "for-each-ref", "--format=%(objectname)", f"refs/agentwaves/{run}/").split()
    for sha in recorded_commits(state):  # each recorded commit is reachable from a pin
        assert any(git(ws.repo, "rev-list", p).count(sha) for p in pinned), sha
    for ref in git(ws.repo, "for-each-ref", "--format=%(refname)", "refs/heads/agentwaves*").split():
        git(ws.repo, "update-ref", "-d", ref)
    gc_now(ws.repo)
    res = agentwaves("resume", *common(ws))
    assert res.returncode == 0, res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    assert {"src/a.py", "src/b.py"} <= set(final_files(ws))
    assert tasks_of(state)["a"]["attempts"] == 1, "wave 1's work was lost and done again"
    assert [s.split()[2] for s, _ in wave_commits(ws.repo, state)] == ["1", "2"]
    assert agentwaves("clean", *common(ws)[:2]).returncode == 0
    assert git(ws.repo, "for-each-ref", f"refs/agentwaves/{run}/") == ""
    assert json.loads(agentwaves("status", "--json", *common(ws)[:2]).stdout)["state"] == "done"


def test_resolver_changes_outside_the_conflicts_are_refused_and_shown_in_review(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path, files={"shared.txt": "top\n"})
    calls = shared_file_calls()
    resolver = [
        {"tool": "write_file", "input": {"path": "shared.txt", "content": "top\nfrom x\nfrom y\n"}},
        {"tool": "run", "input": {"command": "rm src/keep.py"}},  # an earlier wave's file
        {"tool": "write_file", "input": {"path": "sitecustomize.py", "content": "import os\n"}},
        {"tool": "finish", "input": {"summary": "merged"}},
    ]
    script = ws.script({"tasks": calls, "resolver": {"y": resolver}})
    plan = ws.plan(
        [
            {"id": "k", "title": "K", "files": ["src/keep.py"]},
            {"id": "x", "title": "X", "files": ["x.py"], "depends_on": ["k"]},
            {"id": "y", "title": "Y", "files": ["y.py"], "depends_on": ["k"]},
        ]
    )
    res = agentwaves("execute", *common(ws), "--plan", plan, "--llm", "fake", "--fake-script", script)
    assert res.returncode == 0, res.stderr
    state = latest_state(ws.repo)
    files = tree_files(ws.repo, state["branch"])
    assert "src/keep.py" in files and "sitecustomize.py" not in files
    assert git(ws.repo, "show", f"{state['branch']}:shared.txt") == "top\nfrom x\nfrom y"
    review = json.loads(agentwaves("review", "--json", *common(ws)[:2]).stdout)
    wave2 = next(w for w in review["waves"] if w["index"] == 2)
    refused = {g["name"]: g["resolver_refused"] for g in wave2["groups"]}
    assert refused["y"] == ["sitecustomize.py", "src/keep.py"]
    text = agentwaves("review", "--wave", "2", *common(ws)[:2]).stdout
    assert "resolver changes outside the conflicts refused for y: sitecustomize.py, src/keep.py" in text
