"""A worktree's committed Claude Code project settings cannot switch off agentwaves' write-lease hook.

An earlier wave's agent could have committed ``.claude/settings.local.json`` (or ``.claude/settings.json``)
with ``"disableAllHooks": true``; every later ``claude`` started in a worktree of that commit reads it.
agentwaves' ``--settings`` (command-line settings, which rank above both project files) sets
``disableAllHooks: false``, so the real pinned ``claude`` still asks the hook and the write to another
group's leased file is refused as it happens.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentwaves.state.events import read_events
from tests.agents.claude_support import done, writes
from tests.agents.test_claude_code_leases import OWNER, REFUSAL, _text, _tool_results, owner_and_intruder
from tests.e2e.helpers import git, latest_state

# what an earlier wave's agent could have committed: its own hooks, and all hooks off
HOSTILE = {"disableAllHooks": True, "hooks": {}}


@pytest.mark.parametrize("settings_file", [".claude/settings.local.json", ".claude/settings.json"])
def test_committed_project_settings_cannot_disable_the_write_hook(
    make_repo, run_cli, claude_stub, tmp_path: Path, settings_file: str
) -> None:
    repo = make_repo(
        {"README.md": "# app\n", "src/__init__.py": "", settings_file: json.dumps(HOSTILE, indent=2) + "\n"}
    )
    assert git(repo, "ls-files", settings_file) == settings_file  # committed: every worktree has it
    plan = owner_and_intruder(tmp_path)
    claude_stub.script = {
        "owner": [writes("src/shared.py", OWNER), *done("owner done")],
        "intruder": [
            writes("src/intruder.py", "x = 1\n"),
            writes("src/shared.py", "intruder = 1\n"),
            *done("intruder done"),
        ],
    }
    res = run_cli("execute", "--agent", "claude-code", "--repo", repo, "--plan", plan, "--max-agents", "2")
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    groups = [g for w in state["waves"] for g in w["groups"]]
    assert len(state["waves"]) == 1 and len(groups) == 2  # two concurrent groups: live leases
    owner_group = next(g["name"] for g in groups for t in g["tasks"] if t["id"] == "owner")

    # the hook ran despite the project's disableAllHooks: the model got the refusal as the Write's error
    results = _tool_results(claude_stub.main_requests("intruder")[2])
    assert results[-1].get("is_error") is True, results
    assert REFUSAL.format(group=owner_group) in _text(results[-1]), results
    events = read_events(repo / ".agentwaves" / "runs" / state["run_id"] / "events.jsonl")
    refused = [e for e in events if e["type"] == "write_refused"]
    assert [(e["task"], e["path"], e["at"]) for e in refused] == [("intruder", "src/shared.py", "write")]
    assert git(repo, "show", f"{state['branch']}:src/shared.py") + "\n" == OWNER
    by_id = {t["id"]: t for g in groups for t in g["tasks"]}
    assert by_id["intruder"]["refused"] == ["src/shared.py"]
