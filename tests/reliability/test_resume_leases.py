"""Live write leases survive kill -9 and `resume`: a real `agentwaves execute` is killed mid-wave, once the
owner's task is done (its group done, the wave not committed) and while the intruder's task waits for a
flag file; after `resume` the intruder's write to the owner's file is refused at the write."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import git, latest_state
from tests.reliability.support import agentwaves_forked as agentwaves
from tests.reliability.support import events, make_workspace, spawn, tasks_of, wait_for
from tests.reliability.test_kill_resume import wait_command

OWNER = "owner = 1\n"


@pytest.mark.slow
def test_leases_are_restored_on_resume(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""})
    flag = tmp_path / "flag"
    plan = ws.plan(
        [
            {"id": "owner", "title": "Owner", "files": ["src/shared.py"], "estimate": 2},
            {"id": "intruder", "title": "Intruder", "files": ["src/intruder.py"], "estimate": 2},
        ]
    )
    intruder = [
        {"tool": "run", "input": {"command": wait_command(flag), "timeout": 150}},
        {"tool": "write_file", "input": {"path": "src/intruder.py", "content": "x = 1\n"}},
        {"tool": "write_file", "input": {"path": "src/shared.py", "content": "intruder = 1\n"}},
        {"tool": "finish", "input": {"summary": "intruder done"}},
    ]
    owner = [
        {"tool": "write_file", "input": {"path": "src/shared.py", "content": OWNER}},
        {"tool": "finish", "input": {"summary": "owner done"}},
    ]
    script = ws.script({"tasks": {"owner": owner, "intruder": intruder}})
    common = ("--repo", ws.repo, "--sandbox", "none")
    proc = spawn("execute", *common, "--plan", plan, "--llm", "fake", "--fake-script", script,
                 "--fake-time-scale", "0.05", "--max-agents", "2")  # fmt: skip
    try:
        wait_for(lambda: any(e["type"] == "group_done" for e in events(ws.repo)), "the owner's group done")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    flag.touch()  # the orphaned `run` of the intruder (no sandbox) ends; so does the next one at once
    killed = tasks_of(latest_state(ws.repo))
    assert (killed["owner"]["state"], killed["intruder"]["state"]) == ("done", "running")
    assert not [e for e in events(ws.repo) if e["type"] == "write_refused"]

    res = agentwaves("resume", *common)
    assert res.returncode == 0, res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    evs = events(ws.repo)
    refused = [(e["task"], e["path"], e["owner"], e["at"]) for e in evs if e["type"] == "write_refused"]
    assert refused == [("intruder", "src/shared.py", "owner", "write")]  # live, after the resume
    assert not [e for e in evs if e["type"] in ("task_sent_back", "merge_conflict", "resolved")]
    tasks = tasks_of(state)
    assert tasks["intruder"]["refused"] == ["src/shared.py"] and tasks["intruder"]["attempts"] == 2
    assert tasks["owner"]["attempts"] == 1
    assert git(ws.repo, "show", f"{state['branch']}:src/shared.py") + "\n" == OWNER
    assert git(ws.repo, "show", f"{state['branch']}:src/intruder.py") == "x = 1"
