"""claude-code: the real `claude`'s own `rate_limit_event` lowers agentwaves' concurrency.

Claude Code emits ``rate_limit_event`` in stream-json when the ``anthropic-ratelimit-unified-*`` headers
of an API response change what it knows about the account's limits. It reads those headers only when it
is logged in with a subscription (an OAuth token), not with an API key; so these runs authenticate with
``CLAUDE_CODE_OAUTH_TOKEN``, and the stub sends the headers a subscription nearing its five-hour limit
gets (status ``allowed_warning``, 97 % used).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.agents.claude_support import done, writes
from tests.agents.stub_messages import Stub
from tests.e2e.helpers import latest_state, write_yaml
from tests.reliability.support import events, tasks_of


def limit_headers(status: str, utilization: float) -> dict[str, str]:
    reset = str(int(time.time()) + 3600)
    return {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-reset": reset,
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-5h-status": status,
        "anthropic-ratelimit-unified-5h-utilization": str(utilization),
        "anthropic-ratelimit-unified-5h-reset": reset,
        "anthropic-ratelimit-unified-5h-surpassed-threshold": "0.9" if utilization >= 0.9 else "",
    }


def run_two(make_repo, run_cli, stub: Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-test-not-a-real-token")
    repo = make_repo({"agentwaves.yaml": yaml.safe_dump({"max_agents": 2})})
    stub.script = {t: [writes(f"{t}.txt", t), *done(f"{t} done")] for t in "ab"}
    tasks = [{"id": t, "title": t, "files": [f"{t}.txt"]} for t in "ab"]
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": tasks})
    res = run_cli("execute", "--agent", "claude-code", "--repo", repo, "--plan", plan)
    assert res.exit_code == 0, res.stderr + res.stdout
    assert all(t["state"] == "done" for t in tasks_of(latest_state(repo)).values())
    return repo


def test_a_rate_limit_warning_from_claude_lowers_concurrency(
    make_repo, run_cli, claude_stub, tmp_path, monkeypatch
) -> None:
    claude_stub.headers = limit_headers("allowed_warning", 0.97)
    repo = run_two(make_repo, run_cli, claude_stub, tmp_path, monkeypatch)
    lowered = [e for e in events(repo) if e["type"] == "concurrency" and e["reason"] == "rate limited"]
    # each claude process reports the warning once: 2 -> 1, then it stays at 1
    assert [(e["capacity"], e["detail"]) for e in lowered] == [(1, "claude-code: allowed_warning")] * 2
    log = next((repo / ".agentwaves" / "runs").glob("*/logs/a.log")).read_text()
    assert '"claude:rate_limit_event"' in log and '"allowed_warning"' in log  # it came from claude itself


def test_limits_that_are_fine_leave_concurrency_alone(
    make_repo, run_cli, claude_stub, tmp_path, monkeypatch
) -> None:
    claude_stub.headers = limit_headers("allowed", 0.2)
    repo = run_two(make_repo, run_cli, claude_stub, tmp_path, monkeypatch)
    assert not [e for e in events(repo) if e["type"] == "concurrency"]
    log = next((repo / ".agentwaves" / "runs").glob("*/logs/a.log")).read_text()
    assert '"claude:rate_limit_event"' in log  # claude did report its limits: status allowed
