"""Live write leases through Claude Code's ``PreToolUse`` hook: the real pinned ``claude`` (in its jail)
against the scripted Messages API stub. Two groups run at once; group B's agent writes a file group A's
task predicts. The hook asks agentwaves, which refuses the write as it happens."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agentwaves.state.events import read_events
from tests.agents.claude_support import bash, done, writes
from tests.e2e.helpers import git, latest_state, write_yaml

OWNER = "owner = 1\n"
# finds the hook's URL in claude's command line (its --settings) and tries to connect to it
REACH = (
    "u=$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -o '127.0.0.1:[0-9]*/' | head -1); "
    "p=${u#127.0.0.1:}; p=${p%/}; echo port=$p; "
    "(exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && echo hook=reached || echo hook=unreachable"
)
REFUSAL = (
    "src/shared.py is being written by task owner in group {group}; record what you need in your "
    "handoff, or finish and let a later task do it"
)


def owner_and_intruder(tmp_path: Path) -> Path:
    """Two tasks in two groups: ``owner`` leases ``src/shared.py``; ``intruder`` (quick) does not."""
    tasks = [
        {"id": "owner", "title": "Owner", "files": ["src/shared.py"], "estimate": 20},
        {"id": "intruder", "title": "Intruder", "files": ["src/intruder.py"], "estimate": 1},
    ]
    return write_yaml(tmp_path / "plan.yaml", {"feature": "leases", "tasks": tasks})


def _tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        block
        for m in request["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
        for block in m["content"]
        if block.get("type") == "tool_result"
    ]


def _text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(c.get("text", "") for c in content if isinstance(c, dict))
    return str(content)


def test_claude_codes_write_to_a_leased_path_is_refused_by_its_hook(
    make_repo, run_cli, claude_stub, tmp_path: Path
) -> None:
    repo = make_repo({"README.md": "# app\n", "src/__init__.py": ""})
    plan = owner_and_intruder(tmp_path)
    claude_stub.script = {
        "owner": [writes("src/shared.py", OWNER), *done("owner done")],
        "intruder": [
            writes("src/intruder.py", "x = 1\n"),
            # the hook's server is out of the agent's commands' reach (no network, not even loopback)
            bash(REACH),
            writes("src/shared.py", "intruder = 1\n"),
            *done("intruder done"),
        ],
    }
    res = run_cli("execute", "--agent", "claude-code", "--repo", repo, "--plan", plan, "--max-agents", "2")
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    groups = [g for w in state["waves"] for g in w["groups"]]
    assert len(state["waves"]) == 1 and len(groups) == 2  # two concurrent groups
    owner_group = next(g["name"] for g in groups for t in g["tasks"] if t["id"] == "owner")
    refusal = REFUSAL.format(group=owner_group)

    # the model got the refusal as the Write's tool error
    after_write = claude_stub.main_requests("intruder")[3]
    results = _tool_results(after_write)
    last = results[-1]
    assert last.get("is_error") is True and refusal in _text(last), results
    bash_result = _text(results[-2])
    assert re.search(r"port=\d+", bash_result) and "hook=unreachable" in bash_result, bash_result

    events = read_events(repo / ".agentwaves" / "runs" / state["run_id"] / "events.jsonl")
    refused = [e for e in events if e["type"] == "write_refused"]
    expected = {"task": "intruder", "path": "src/shared.py", "owner": "owner", "owner_group": owner_group}
    assert refused == [{**refused[0], **expected, "at": "write"}]  # live, at the write: once
    assert not [e for e in events if e["type"] == "task_sent_back"]  # the fallback had nothing to do
    assert len(claude_stub.main_requests("intruder")) == 4  # one claude run (the handoff ends it), not two
    assert not {e["type"] for e in events} & {"merge_conflict", "resolved", "resolve_failed"}
    assert not claude_stub.main_requests("resolver")
    assert git(repo, "show", f"{state['branch']}:src/shared.py") + "\n" == OWNER
    assert git(repo, "show", f"{state['branch']}:src/intruder.py") == "x = 1"
    by_id = {t["id"]: t for g in groups for t in g["tasks"]}
    assert by_id["intruder"]["refused"] == ["src/shared.py"]
    assert by_id["owner"]["refused"] == []
    assert "src/shared.py" not in by_id["intruder"]["files_written"]
    argv = json.dumps([e for e in events if e["type"] == "task_started"])  # sanity: both ran
    assert "owner" in argv and "intruder" in argv
