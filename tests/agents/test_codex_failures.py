"""codex: a 429 its own retries do not get past, kill -9 mid task; the real `codex`, a scripted API."""

from __future__ import annotations

import yaml

from tests.agents.codex_support import done, shell
from tests.agents.run_support import a_then_b, kill_9_mid_task_then_resume, plan
from tests.e2e.helpers import latest_state
from tests.reliability.support import events, tasks_of


def test_429_reruns_codex_lowering_concurrency_then_gives_up(make_repo, run_cli, codex_stub, tmp_path):
    repo = make_repo({"agentwaves.yaml": yaml.safe_dump({"retry_initial_wait": 0.01, "max_agents": 2})})
    codex_stub.script = {t: [shell(f"echo {t} > {t}.txt"), done(f"{t} done")] for t in "ab"}
    # a: one 429 (codex has no retries of its own here), then fine; b: 503 more often than agentwaves reruns
    codex_stub.faults = {"a": [429], "b": [503, 503, 503]}
    tasks = [{"id": t, "title": t, "files": [f"{t}.txt"]} for t in "ab"]
    res = run_cli("execute", "--agent", "codex", "--repo", repo, "--plan", plan(tmp_path, *tasks))
    assert res.exit_code == 1
    state = tasks_of(latest_state(repo))
    assert state["a"]["state"] == "done" and state["b"]["state"] == "failed"
    assert "HTTP 503 after its own retries" in state["b"]["error"]
    evs = events(repo)
    retries = [(e["task"], e["kind"]) for e in evs if e["type"] == "retry"]
    assert retries.count(("a", "rate_limit")) == 1 and retries.count(("b", "overloaded")) == 2
    assert [e["capacity"] for e in evs if e["type"] == "concurrency" and e["reason"] == "rate limited"][
        :1
    ] == [1]


def test_kill_9_mid_task_then_resume(make_repo, codex_stub, tmp_path, run_cli):
    repo = make_repo()
    codex_stub.script = {t: [shell(f"printf '{t.upper()}\\n' > {t}.txt"), done(f"{t} done")] for t in "ab"}
    codex_stub.faults = {"b": ["hang"]}
    called = lambda: len(codex_stub.requests_of("b")) >= 1  # noqa: E731
    kill_9_mid_task_then_resume(repo, tmp_path, run_cli, "codex", called)


def test_the_budget_stops_the_run_cleanly_before_the_next_codex_job(make_repo, run_cli, codex_stub, tmp_path):
    repo = make_repo()
    codex_stub.script = {t: [shell(f"echo {t} > {t}.txt"), done(f"{t} done")] for t in "ab"}
    p = a_then_b(tmp_path)
    # a costs about $0.0025 (two responses of the stub on gpt-5.1-codex): b must not start
    res = run_cli("execute", "--agent", "codex", "--repo", repo, "--plan", p, "--budget-usd", "0.001")
    assert res.exit_code != 0 and "budget" in (res.stderr + res.stdout).lower()
    state = tasks_of(latest_state(repo))
    assert state["a"]["state"] == "done" and state["b"]["state"] == "pending"
    assert codex_stub.requests_of("b") == []
    res = run_cli("resume", "--repo", repo, "--budget-usd", "1")
    assert res.exit_code == 0, res.stderr + res.stdout
    assert [t["state"] for t in tasks_of(latest_state(repo)).values()] == ["done", "done"]


def test_model_and_agent_args_pass_on_to_codex(make_repo, run_cli, codex_stub, tmp_path):
    args = {"agent_args": ["-c", 'model_reasoning_effort="low"']}
    repo = make_repo({"agentwaves.yaml": yaml.safe_dump(args)})
    codex_stub.script = {"a": [done("nothing to do")]}
    p = plan(tmp_path, {"id": "a", "title": "A"})
    res = run_cli("execute", "--agent", "codex", "--repo", repo, "--plan", p, "--model", "gpt-5.2-codex")
    assert res.exit_code == 0, res.stderr + res.stdout
    body = codex_stub.requests_of("a")[0]
    assert body["model"] == "gpt-5.2-codex" and body["reasoning"]["effort"] == "low"
    # priced as the model that ran: (800 x 1.75 + 200 x 0.175 + 50 x 14) / 1e6
    usage = tasks_of(latest_state(repo))["a"]["usage"]
    assert usage["cost_usd"] == round((800 * 1.75 + 200 * 0.175 + 50 * 14) / 1e6, 6)
