"""The end-of-task lease check credits each task with its own writes only.

Two tasks of one group share its worktree. The first writes a file another group leases (by a command)
and is still running when the second starts and ends: the second's check must not count that file,
which was there before it started, as its write. Tasks and the test synchronize through flag files, so
the order is what the test makes it, not a timing it hopes for."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import git, latest_state
from tests.reliability.support import events, make_workspace, spawn, tasks_of, wait_for
from tests.reliability.test_kill_resume import wait_command

OWNER = "owner = 1\n"


@pytest.mark.slow
def test_a_siblings_write_is_not_credited_to_the_task_checked(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    # live checks off: every task is checked at its end from git, as agents without a write hook are
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""}, config={"live_leases": False})
    wrote, release = tmp_path / "s1-wrote", tmp_path / "release-s1"
    plan = ws.plan(
        [
            # ranked first (longest): s1 and owner take the two slots; s2 starts once owner is done
            {"id": "s1", "title": "S1", "files": ["src/one.py"], "group": "g", "estimate": 5},
            {"id": "owner", "title": "Owner", "files": ["src/shared.py"], "estimate": 3},
            {"id": "s2", "title": "S2", "files": ["src/two.py"], "group": "g", "estimate": 1},
        ]
    )
    script = {
        "tasks": {
            "s1": [
                {"tool": "run", "input": {"command": f"echo s1 > src/shared.py && touch '{wrote}'"}},
                {"tool": "run", "input": {"command": wait_command(release), "timeout": 150}},
                {"tool": "write_file", "input": {"path": "src/one.py", "content": "one = 1\n"}},
                {"tool": "finish", "input": {"summary": "s1 done"}},
            ],
            "owner": [  # ends after s1's write: s2 starts with s1's shared.py already in the worktree
                {"tool": "run", "input": {"command": wait_command(wrote), "timeout": 150}},
                {"tool": "write_file", "input": {"path": "src/shared.py", "content": OWNER}},
                {"tool": "finish", "input": {"summary": "owner done"}},
            ],
            "s2": [
                {"tool": "write_file", "input": {"path": "src/two.py", "content": "two = 1\n"}},
                {"tool": "finish", "input": {"summary": "s2 done"}},
            ],
        }
    }
    common = ("--repo", ws.repo, "--plan", plan, "--llm", "fake", "--sandbox", "none")
    proc = spawn("execute", *common, "--fake-script", ws.script(script), "--fake-time-scale", "0.05",
                 "--max-agents", "2")  # fmt: skip
    try:

        def done() -> set[str]:
            return {e["task"] for e in events(ws.repo) if e["type"] == "task_done"}

        wait_for(lambda: "s2" in done(), "s2 done while s1 still runs")
        assert "s1" not in done()
        release.touch()
        _, err = proc.communicate(timeout=180)
    finally:
        release.touch()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    evs = events(ws.repo)
    refused = [(e["task"], e["path"], e["at"]) for e in evs if e["type"] == "write_refused"]
    # s1's write is s1's: refused at its end, sent back, written again by its script, undone again
    assert refused == [("s1", "src/shared.py", "end")] * 2
    assert [e["task"] for e in evs if e["type"] == "task_sent_back"] == ["s1"]
    state = latest_state(ws.repo)
    tasks = tasks_of(state)
    assert tasks["s2"]["refused"] == [] and tasks["s1"]["refused"] == ["src/shared.py"]
    assert git(ws.repo, "show", f"{state['branch']}:src/shared.py") + "\n" == OWNER
    assert git(ws.repo, "show", f"{state['branch']}:src/two.py") == "two = 1"
    assert git(ws.repo, "show", f"{state['branch']}:src/one.py") == "one = 1"
    assert not [e for e in evs if e["type"] in ("merge_conflict", "resolved", "resolve_failed")]
