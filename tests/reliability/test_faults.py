"""Faulty APIs: transient errors are retried, exhausted retries fail one group, fatal errors fail fast, and a
spending limit stops the run cleanly and resumably."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import git, latest_state, shared_file_calls, wave_commits
from tests.reliability.support import (
    Fingerprint,
    events,
    groups_of,
    make_workspace,
    tasks_of,
    tool_results,
    transcript,
)
from tests.reliability.support import (
    agentwaves_forked as agentwaves,
)

RETRYABLE = ["rate_limit", "overloaded", "server_error", "timeout", "connection"]

THREE = [
    {"id": "a", "title": "A", "files": ["a.py"]},
    {"id": "b", "title": "B", "files": ["b.py"]},
    {"id": "c", "title": "C", "files": ["c.py"], "depends_on": ["a"]},
]


# ------------------------------------------------------------------------------------------ execution


@pytest.mark.parametrize("kind", RETRYABLE)
def test_transient_errors_in_execution_are_retried(
    kind: str, make_repo: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    script = ws.script(
        {
            "faults": [
                {"task": "a", "call": 1, "error": kind, "times": 2},  # the 3rd and last attempt succeeds
                {"task": "c", "call": 2, "error": kind},  # wave 2, mid-task
            ]
        }
    )
    before = Fingerprint.take(ws)
    res = run_cli("execute", "--repo", ws.repo, "--plan", ws.plan(THREE), "--llm", "fake",
                  "--fake-script", script, "--sandbox", "none")  # fmt: skip
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    assert len(wave_commits(ws.repo, state)) == 2
    retries = [e for e in events(ws.repo) if e["type"] == "retry"]
    assert [(e["task"], e["kind"], e["attempt"]) for e in retries if e["task"] == "a"] == [
        ("a", kind, 1),
        ("a", kind, 2),
    ]
    assert [(e["task"], e["kind"]) for e in retries if e["task"] != "a"] == [("c", kind)]
    tasks = tasks_of(state)
    assert (tasks["a"]["retries"], tasks["b"]["retries"], tasks["c"]["retries"]) == (2, 0, 1)
    assert all(t["attempts"] == 1 for t in tasks.values())  # retried calls, not rerun tasks
    before.assert_unchanged(ws)


def test_malformed_tool_call_in_execution_is_answered_and_the_agent_recovers(
    make_repo: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    script = ws.script({"faults": [{"task": "a", "call": 2, "error": "malformed"}]})
    before = Fingerprint.take(ws)
    res = run_cli("execute", "--repo", ws.repo, "--plan", ws.plan(THREE), "--llm", "fake",
                  "--fake-script", script, "--sandbox", "none")  # fmt: skip
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    results = tool_results(ws.repo, "a")
    bad = [r for r in results if r["is_error"] and r["name"] == "write_file"]
    assert len(bad) == 1
    assert "invalid input for write_file: missing required field(s) content" in bad[0]["result"]
    assert results[-1]["name"] == "finish"
    assert tasks_of(state)["a"]["retries"] == 0
    before.assert_unchanged(ws)


def test_exhausted_retries_fail_only_that_group(
    make_repo: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    plan = ws.plan(
        [
            {"id": "a", "title": "A", "files": ["a.py"]},
            {"id": "b", "title": "B", "files": ["b.py"]},
            {"id": "c", "title": "C", "files": ["c.py"]},
            {"id": "d", "title": "D", "files": ["d.py"], "depends_on": ["a", "b", "c"]},
        ]
    )
    script = ws.script({"faults": [{"task": "b", "call": 1, "error": "overloaded", "times": 100}]})
    before = Fingerprint.take(ws)
    res = run_cli("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--fake-script", script,
                  "--sandbox", "none")  # fmt: skip
    assert res.exit_code == 1
    assert "b" in res.stderr and "resume" in res.stderr
    status = run_cli("status", "--json", "--repo", ws.repo)
    assert status.exit_code == 0
    data = json.loads(status.stdout)
    assert data["state"] == "failed"
    groups = {g["name"]: g for w in data["waves"] for g in w["groups"]}
    assert (groups["a"]["state"], groups["b"]["state"], groups["c"]["state"]) == ("done", "failed", "done")
    assert groups["d"]["state"] == "pending"
    assert "gave up after 3 attempts" in groups["b"]["error"]
    task_b = groups["b"]["tasks"][0]
    assert task_b["state"] == "failed" and "gave up after 3 attempts: overloaded" in task_b["error"]
    assert groups["b"]["logs"] == [task_b["log"]]
    assert "gave up after" in (ws.repo / task_b["log"]).read_text()
    state = latest_state(ws.repo)
    assert tasks_of(state)["b"]["retries"] == 2
    assert [e["attempt"] for e in events(ws.repo) if e["type"] == "retry"] == [1, 2]
    assert wave_commits(ws.repo, state) == []  # a failed group blocks the wave's commit, keeps the others
    before.assert_unchanged(ws)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"error": "spend_limit"}, "spend limit"),
        ({"error": "rate_limit", "retry_after": 3600}, "asked to wait 3600s, more than the cap of 5s"),
    ],
    ids=["spend_limit", "retry_after_3600"],
)
def test_fatal_errors_fail_fast_instead_of_blocking(
    fault: dict[str, Any], message: str, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    script = ws.script({"faults": [{"task": "b", "call": 1, **fault}]})
    before = Fingerprint.take(ws)
    # bounded: blocking on a 3600 s retry-after (or retrying a spend limit) would hit this timeout
    res = agentwaves("execute", "--repo", ws.repo, "--plan", ws.plan(THREE), "--llm", "fake",
                     "--fake-script", script, "--sandbox", "none", timeout=120)  # fmt: skip
    assert res.returncode == 1, res.stderr
    state = latest_state(ws.repo)
    tasks = tasks_of(state)
    assert tasks["b"]["state"] == "failed" and message in tasks["b"]["error"]
    assert tasks["b"]["retries"] == 0
    assert tasks["a"]["state"] == "done"
    assert not [e for e in events(ws.repo) if e["type"] == "retry"]
    assert next(e for e in events(ws.repo) if e["type"] == "run_finished")["state"] == "failed"
    before.assert_unchanged(ws)


# ------------------------------------------------------------------------------------------ planning


def _plan(run_cli: Callable[..., Any], repo: Path, script: Path) -> Any:
    return run_cli("plan", "add email and SMS notifications", "--repo", repo, "--llm", "fake",
                   "--fake-script", script)  # fmt: skip


@pytest.mark.parametrize("kind", [*RETRYABLE, "malformed"])
def test_faults_in_planning_are_retried(
    kind: str, make_repo: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    ws = make_workspace(make_repo, tmp_path, files={"notify/__init__.py": ""})
    times = 1 if kind == "malformed" else 2
    script = ws.script({"faults": [{"task": "planner", "call": 1, "error": kind, "times": times}]})
    before = Fingerprint.take(ws)
    res = _plan(run_cli, ws.repo, script)
    assert res.exit_code == 0, res.stderr
    plan = yaml.safe_load((ws.repo / ".agentwaves" / "plan.yaml").read_text())
    assert len(plan["tasks"]) >= 4
    if kind == "malformed":  # the invalid submission went back to the planner, which submitted again
        log = [
            json.loads(line) for line in (ws.repo / ".agentwaves/logs/planner.log").read_text().splitlines()
        ]
        results = [r["data"]["result"] for r in log if r["kind"] == "tool"]
        assert results[0].startswith("invalid plan") and results[-1] == "plan accepted"
    before.assert_unchanged(ws)


@pytest.mark.parametrize("kind", RETRYABLE)
def test_planning_gives_up_after_the_retry_budget(
    kind: str, make_repo: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    """The counterpart of the test above: one more fault than the retry attempts fails the planner."""
    ws = make_workspace(make_repo, tmp_path)
    script = ws.script({"faults": [{"task": "planner", "call": 1, "error": kind, "times": 3}]})
    before = Fingerprint.take(ws)
    res = _plan(run_cli, ws.repo, script)
    assert res.exit_code == 1
    *retries, error = res.stderr.strip().splitlines()
    assert "gave up after 3 attempts" in error  # one line, after one line per retry as it happened
    assert len(retries) == 2 and all(r.startswith("model call failed (") for r in retries)
    assert not (ws.repo / ".agentwaves" / "plan.yaml").exists()
    before.assert_unchanged(ws)


# ------------------------------------------------------------------------------------------ budget

CHAIN = [
    {"id": "a", "title": "A", "files": ["a.py"]},
    {"id": "b", "title": "B", "files": ["b.py"], "depends_on": ["a"]},
    {"id": "c", "title": "C", "files": ["c.py"], "depends_on": ["b"]},
    {"id": "d", "title": "D", "files": ["d.py"], "depends_on": ["c"]},
]


def test_budget_stops_the_run_cleanly_and_resume_with_a_higher_budget_completes(
    make_repo: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    # a reference run prices one task (the fake reports Sonnet-priced, deterministic usage)
    ref = make_workspace(make_repo, tmp_path, name="ref")
    res = run_cli(
        "execute", "--repo", ref.repo, "--plan", ref.plan(CHAIN), "--llm", "fake", "--sandbox", "none"
    )
    assert res.exit_code == 0, res.stderr
    ref_tasks = tasks_of(latest_state(ref.repo))
    cost_a, cost_b = ref_tasks["a"]["usage"]["cost_usd"], ref_tasks["b"]["usage"]["cost_usd"]
    assert cost_a > 0 and cost_b > 0
    budget = round(cost_a + cost_b / 2, 6)  # enough for a and part of b

    ws = make_workspace(make_repo, tmp_path, name="run")
    before = Fingerprint.take(ws)
    res = run_cli("execute", "--repo", ws.repo, "--plan", ws.plan(CHAIN), "--llm", "fake",
                  "--sandbox", "none", "--budget-usd", str(budget))  # fmt: skip
    assert res.exit_code == 1
    assert "budget" in res.stderr and "resume" in res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "stopped" and "budget" in state["error"]
    tasks = tasks_of(state)
    assert tasks["a"]["state"] == "done"
    assert tasks["b"]["state"] == "pending" and tasks["b"]["attempts"] == 1  # stopped mid-task, resumable
    assert (tasks["c"]["state"], tasks["d"]["state"]) == ("pending", "pending")
    assert len(wave_commits(ws.repo, state)) == 1
    # no model call started once the budget was reached
    usage = [e for e in events(ws.repo) if e["type"] == "usage"]
    crossed = next(i for i, e in enumerate(usage) if e["run_cost_usd"] >= budget)
    assert crossed == len(usage) - 1
    assert state["usage"]["cost_usd"] == pytest.approx(usage[-1]["run_cost_usd"], abs=1e-6)
    status = json.loads(run_cli("status", "--json", "--repo", ws.repo).stdout)
    assert status["state"] == "stopped" and "resume" in status["hint"]
    before.assert_unchanged(ws)

    # resuming with the same budget (the run's saved setting) spends nothing more: what the stopped
    # attempt spent is counted
    calls = len(usage)
    res = run_cli("resume", "--repo", ws.repo)
    assert res.exit_code == 1 and "budget" in res.stderr
    assert latest_state(ws.repo)["state"] == "stopped"
    assert len([e for e in events(ws.repo) if e["type"] == "usage"]) == calls

    res = run_cli("resume", "--repo", ws.repo, "--budget-usd", "100")
    assert res.exit_code == 0, res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    tasks = tasks_of(state)
    assert tasks["a"]["attempts"] == 1  # never rerun
    assert tasks["b"]["attempts"] == 3  # stopped, stopped again before its first call, then done
    assert len(wave_commits(ws.repo, state)) == 4
    started = [e["task"] for e in events(ws.repo) if e["type"] == "task_started"]
    assert started.count("a") == 1
    # the run's total is every call it paid for, the stopped attempt's included
    paid = sum(e["cost_usd"] for e in events(ws.repo) if e["type"] == "usage")
    assert state["usage"]["cost_usd"] == pytest.approx(paid, abs=1e-5)
    assert transcript(ws.repo, "b")[0] == {"kind": "attempt", "data": 1}
    before.assert_unchanged(ws)


def test_budget_reached_by_the_resolver_stops_cleanly(
    make_repo: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    """Both tasks finish within the budget; merging needs the resolver, whose first call is over it."""
    plan_tasks = [{"id": t, "title": t.upper(), "files": [f"{t}.py"]} for t in ("x", "y")]
    calls = shared_file_calls()
    files = {"shared.txt": "top\n"}
    ref = make_workspace(make_repo, tmp_path, files=files, name="ref")
    # --sequential: the same calls in the same order in both runs, so the same costs
    args = ("--llm", "fake", "--sandbox", "none", "--sequential")
    res = run_cli("execute", "--repo", ref.repo, "--plan", ref.plan(plan_tasks), *args,
                  "--fake-script", ref.script({"tasks": calls}))  # fmt: skip
    assert res.exit_code == 0, res.stderr
    usage = [e for e in events(ref.repo) if e["type"] == "usage"]
    assert [e["task"] for e in usage][-2:] == ["resolve:y", "resolve:y"]
    tasks_cost = next(e["run_cost_usd"] for e in reversed(usage) if e["task"] == "y")
    budget = round(tasks_cost - 2e-6, 6)  # the tasks' last calls start below it; the resolver's do not

    ws = make_workspace(make_repo, tmp_path, files=files, name="run")
    before = Fingerprint.take(ws)
    res = run_cli("execute", "--repo", ws.repo, "--plan", ws.plan(plan_tasks), *args,
                  "--fake-script", ws.script({"tasks": calls}), "--budget-usd", str(budget))  # fmt: skip
    assert res.exit_code == 1
    assert "budget" in res.stderr and "resume" in res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "stopped" and "budget" in state["error"]
    assert all(t["state"] == "done" for t in tasks_of(state).values())
    assert state["waves"][0]["commit"] is None
    assert next(e for e in events(ws.repo) if e["type"] == "run_finished")["state"] == "stopped"
    assert not [e for e in events(ws.repo) if e["type"] == "usage" and e["task"].startswith("resolve")]
    before.assert_unchanged(ws)

    res = run_cli("resume", "--repo", ws.repo, "--budget-usd", "100")
    assert res.exit_code == 0, res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    assert all(t["attempts"] == 1 for t in tasks_of(state).values())
    text = git(ws.repo, "show", f"{state['branch']}:shared.txt")
    assert "from x" in text and "from y" in text and "<<<<<<<" not in text
    before.assert_unchanged(ws)


@pytest.mark.parametrize("times", [2, 100])
def test_faults_of_the_resolver(
    times: int, make_repo: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    """Retried like any agent's; when retries run out the group fails with its conflict, branch kept."""
    calls = shared_file_calls(own_file=False)
    ws = make_workspace(make_repo, tmp_path, files={"shared.txt": "top\n"})
    plan = ws.plan([{"id": t, "title": t.upper(), "files": [f"{t}.py"]} for t in ("x", "y")])
    script = ws.script(
        {"tasks": calls, "faults": [{"task": "resolver", "call": 1, "error": "server_error", "times": times}]}
    )
    before = Fingerprint.take(ws)
    res = run_cli("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--fake-script", script,
                  "--sandbox", "none")  # fmt: skip
    state = latest_state(ws.repo)
    retries = [e for e in events(ws.repo) if e["type"] == "retry"]
    assert {e["kind"] for e in retries} == {"server_error"}
    if times == 2:
        assert res.exit_code == 0, res.stderr
        assert len(retries) == 2
        assert "from x" in git(ws.repo, "show", f"{state['branch']}:shared.txt")
    else:
        assert res.exit_code == 1
        failed = [g for g in groups_of(state).values() if g["state"] == "failed"]
        assert len(failed) == 1 and failed[0]["conflicts"] == ["shared.txt"]
        assert git(ws.repo, "rev-parse", "--verify", f"refs/heads/{failed[0]['branch']}")
        assert all(t["state"] == "done" for t in tasks_of(state).values())  # the work is kept
        assert wave_commits(ws.repo, state) == []
    before.assert_unchanged(ws)
