"""An unknown cost stays unknown across kill -9 and `resume`, even when the resume names a priced model.

Wave 1's task ``a`` runs on a model missing from the price table (its cost is recorded as unknown); the
run is killed with SIGKILL while wave 2's ``d`` waits for a flag file; `resume --model` then names a
priced model. ``a``'s recorded usage must not be repriced as that model, and the run's totals (in the
state, `status --json`, `status` and the report) must still say that part of the cost is unknown.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import latest_state, shared_file_calls
from tests.reliability.support import agentwaves_forked as agentwaves
from tests.reliability.support import events, make_workspace, spawn, tasks_of, wait_for
from tests.reliability.test_kill_resume import blocking_task

UNPRICED = "local-llama-70b"  # no price, no family: its cost is unknown
PRICED = "claude-sonnet-5-5"


@pytest.mark.slow
def test_unknown_cost_survives_kill_9_and_resume_with_a_priced_model(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""})
    flag = tmp_path / "flag-d"
    plan = ws.plan(
        [
            {"id": "a", "title": "A", "files": ["src/a.py"], "estimate": 2},
            {"id": "d", "title": "D", "files": ["docs/d.md"], "depends_on": ["a"], "estimate": 2},
        ]
    )
    script = ws.script({"tasks": {"d": blocking_task(flag, "docs/d.md", "# D\n")}})
    common = ("--repo", ws.repo, "--sandbox", "none", "--llm", "fake", "--fake-script", script)
    proc = spawn("execute", *common, "--plan", plan, "--model", UNPRICED, "--fake-time-scale", "0.5")
    try:
        wait_for(lambda: any(e["type"] == "task_started" and e["task"] == "d" for e in events(ws.repo)), "d")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    flag.touch()  # the orphaned wait of d (no sandbox) ends

    killed = tasks_of(latest_state(ws.repo))
    assert killed["a"]["state"] == "done"
    recorded = killed["a"]["usage"]
    assert recorded["cost_known"] is False and recorded["cost_usd"] == 0.0
    assert recorded["input_tokens"] + recorded["cache_creation_input_tokens"] > 0  # tokens, no price

    # the killed run's status (no final total yet: the sum of its calls so far) says so too
    status = agentwaves("status", "--json", "--repo", ws.repo)
    assert status.returncode == 0, status.stderr
    interrupted = json.loads(status.stdout)
    assert interrupted["state"] == "interrupted" and interrupted["usage"]["cost_known"] is False
    assert "cache read; cost unknown" in agentwaves("status", "--repo", ws.repo).stdout

    resumed = agentwaves("resume", *common, "--model", PRICED)
    assert resumed.returncode == 0, resumed.stderr
    assert "output; cost at least $" in resumed.stdout and "(part unknown)" in resumed.stdout  # its summary

    # every usage event, before the kill and after the resume, says the run's total is not all known
    # (the live display's "cost at least $X (part unknown)")
    usage = [e for e in events(ws.repo) if e["type"] == "usage"]
    assert {e["task"] for e in usage} == {"a", "d"}
    assert [e["run_cost_known"] for e in usage] == [False] * len(usage)

    state = latest_state(ws.repo)
    tasks = tasks_of(state)
    assert state["state"] == "done"
    assert tasks["a"]["attempts"] == 1 and tasks["a"]["usage"] == recorded  # not repriced as PRICED
    assert tasks["d"]["usage"]["cost_known"] is True and tasks["d"]["usage"]["cost_usd"] > 0
    assert state["usage"]["cost_known"] is False  # the run's total: part of it is unknown
    assert state["usage"]["cost_usd"] == pytest.approx(tasks["d"]["usage"]["cost_usd"], abs=1e-6)

    status = agentwaves("status", "--json", "--repo", ws.repo)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["usage"]["cost_known"] is False
    assert data["usage"]["cost_usd"] == state["usage"]["cost_usd"]

    human = agentwaves("status", "--repo", ws.repo)
    assert human.returncode == 0, human.stderr
    assert f"cost at least ${state['usage']['cost_usd']:.4f} (part unknown)" in human.stdout

    runs = json.loads(agentwaves("runs", "--json", "--repo", ws.repo).stdout)["runs"]
    assert [(r["cost_usd"], r["cost_known"]) for r in runs] == [(state["usage"]["cost_usd"], False)]
    assert f"at least ${state['usage']['cost_usd']:.4f}" in agentwaves("runs", "--repo", ws.repo).stdout

    report = (ws.repo / ".agentwaves" / "runs" / state["run_id"] / "report.md").read_text()
    assert "| `a` |" in report and "| unknown |" in report
    assert "| **Run total** |" in report and f"{state['usage']['cost_usd']:.4f} + unknown |" in report

    # a run recorded before the fix (its total claims a known cost): a task's unknown cost still shows
    path = ws.repo / ".agentwaves" / "runs" / state["run_id"] / "state.json"
    path.write_text(json.dumps(state | {"usage": state["usage"] | {"cost_known": True}}))
    status = agentwaves("status", "--json", "--repo", ws.repo)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["usage"]["cost_known"] is False


@pytest.mark.slow
def test_the_resolvers_cost_survives_kill_9_and_resume(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """Wave 1's groups both write ``shared.txt``: its merge needs the resolver, whose calls cost. The run is
    killed in wave 2; the resumed run's total must still hold what the resolver spent."""
    ws = make_workspace(make_repo, tmp_path, files={"shared.txt": "top\n"})
    flag = tmp_path / "flag-d"
    plan = ws.plan(
        [
            {"id": "x", "title": "X", "files": ["x.py"]},
            {"id": "y", "title": "Y", "files": ["y.py"]},
            {"id": "d", "title": "D", "files": ["docs/d.md"], "depends_on": ["x", "y"]},
        ]
    )
    script = ws.script({"tasks": {**shared_file_calls(), "d": blocking_task(flag, "docs/d.md", "# D\n")}})
    common = ("--repo", ws.repo, "--sandbox", "none", "--llm", "fake", "--fake-script", script)
    proc = spawn("execute", *common, "--plan", plan)
    try:
        wait_for(lambda: any(e["type"] == "task_started" and e["task"] == "d" for e in events(ws.repo)), "d")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    flag.touch()
    calls = [e for e in events(ws.repo) if e["type"] == "usage" and e["task"] == "resolve:y"]
    resolver = sum(e["cost_usd"] for e in calls)
    assert resolver > 0, "the resolver made no priced call: the test shows nothing"

    res = agentwaves("resume", "--repo", ws.repo)
    assert res.returncode == 0, res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    tasks = sum(t["usage"]["cost_usd"] for t in tasks_of(state).values())
    assert state["usage"]["cost_usd"] == pytest.approx(tasks + resolver, abs=2e-6)
    status = json.loads(agentwaves("status", "--json", "--repo", ws.repo).stdout)
    assert status["usage"]["cost_usd"] == pytest.approx(tasks + resolver, abs=2e-6)
