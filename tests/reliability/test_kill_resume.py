"""kill -9 of a real `agentwaves execute` while agents are mid-task, then `resume`; and two resumes at once.

Task ``b`` (wave 1) and ``d`` (wave 2) wait for flag files the test creates, so "mid-task" and "the first
resume is still running" are states the test controls, not timings it hopes for.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import git, latest_state, wave_commits
from tests.reliability.support import (
    Fingerprint,
    events,
    make_workspace,
    run_dirs,
    spawn,
    tasks_of,
    wait_for,
)
from tests.reliability.support import (
    agentwaves_forked as agentwaves,
)


def wait_command(flag: Path) -> str:
    """A bounded shell loop that ends once ``flag`` exists (and fails if it never appears)."""
    return f"for i in $(seq 2400); do [ -e '{flag}' ] && break; sleep 0.05; done; test -e '{flag}'"


def blocking_task(flag: Path, path: str, content: str) -> list[dict[str, object]]:
    return [
        {"tool": "run", "input": {"command": wait_command(flag), "timeout": 150}},
        {"tool": "write_file", "input": {"path": path, "content": content}},
        {"tool": "finish", "input": {"summary": f"wrote {path}"}},
    ]


def task_trailers(repo: Path) -> Counter[str]:
    out = git(
        repo, "log", "--format=%(trailers:key=Agentwaves-Task,valueonly)", "--branches=agentwaves-groups/*"
    )
    return Counter(line.strip() for line in out.splitlines() if line.strip())


@pytest.mark.slow
def test_kill_9_mid_task_then_resume_and_a_second_resume_is_refused(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""})
    flag_b, flag_d = tmp_path / "flag-b", tmp_path / "flag-d"
    plan = ws.plan(
        [
            {"id": "a", "title": "A", "files": ["src/a.py"], "estimate": 2},
            {"id": "b", "title": "B", "files": ["src/b.py"], "estimate": 2},
            {"id": "c", "title": "C", "files": ["src/c.py"], "estimate": 2},
            {"id": "d", "title": "D", "files": ["docs/d.md"], "depends_on": ["a", "b", "c"], "estimate": 2},
        ]
    )
    script = ws.script(
        {
            "tasks": {
                "b": blocking_task(flag_b, "src/b.py", "B = 1\n"),
                "d": blocking_task(flag_d, "docs/d.md", "# D\n"),
            }
        }
    )
    before = Fingerprint.take(ws)
    common = ("--repo", ws.repo, "--sandbox", "none")
    proc = spawn(
        "execute", *common, "--plan", plan, "--llm", "fake", "--fake-script", script,
        "--fake-time-scale", "0.5",
    )  # fmt: skip
    try:
        wait_for(lambda: any(e["type"] == "task_done" for e in events(ws.repo)), "the first task_done")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    flag_b.touch()  # lets the orphaned `run` of b (no sandbox: nothing kills it) end

    killed = latest_state(ws.repo)  # never torn: written atomically
    killed_tasks = tasks_of(killed)
    assert killed_tasks["b"]["state"] == "running"  # it was mid-task
    assert killed_tasks["d"]["state"] == "pending"
    done_at_kill = {t for t, ts in killed_tasks.items() if ts["state"] == "done"}
    assert done_at_kill and done_at_kill <= {"a", "c"}
    status = agentwaves("status", "--json", "--repo", ws.repo)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "interrupted"
    before.assert_unchanged(ws)

    first = spawn("resume", *common)
    try:
        # d starts only in the resumed run, and waits for flag-d: the first resume is now surely running
        wait_for(lambda: any(e["type"] == "task_started" and e["task"] == "d" for e in events(ws.repo)), "d")
        second = agentwaves("resume", *common)
        assert second.returncode == 1
        err = second.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert "another agentwaves process is executing in this repository" in err
        assert killed["run_id"] in err  # names the run that holds the lock
        assert len(run_dirs(ws.repo)) == 1
    finally:
        flag_d.touch()
        _, err = first.communicate(timeout=180)
    assert first.returncode == 0, err

    state = latest_state(ws.repo)
    assert state["state"] == "done"
    commits = wave_commits(ws.repo, state)
    assert [s.split()[2] for s, _ in commits] == ["1", "2"]  # exactly one commit per wave
    tasks = tasks_of(state)
    for tid in done_at_kill:
        assert tasks[tid]["attempts"] == 1, f"{tid} finished before the kill and ran again"
    assert tasks["b"]["attempts"] == 2
    assert tasks["d"]["attempts"] == 1
    assert task_trailers(ws.repo) == Counter({"a": 1, "b": 1, "c": 1, "d": 1})
    assert git(ws.repo, "show", f"{state['branch']}:src/b.py") == "B = 1"
    started = Counter(e["task"] for e in events(ws.repo) if e["type"] == "task_started")
    assert all(started[t] == 1 for t in done_at_kill)
    assert [e["type"] for e in events(ws.repo)].count("run_started") == 2  # the refused resume left no trace
    before.assert_unchanged(ws)


def live_processes(cmdline: bytes) -> list[int]:
    """Pids of live (not zombie) processes whose command line is exactly ``cmdline``."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() != cmdline:
                continue
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_kill_9_leaves_no_sandboxed_command_running(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    """bubblewrap's --die-with-parent: a `run` in progress dies with agentwaves. (Without a sandbox it
    would keep running until it ends by itself: see docs/reliability.md.)"""
    ws = make_workspace(make_repo, tmp_path)
    marker = f"{1000 + uuid.uuid4().int % 1000}.5"
    cmdline = f"sleep\0{marker}\0".encode()
    plan = ws.plan([{"id": "a", "title": "A", "files": ["a.py"]}])
    script = ws.script({"tasks": {"a": [{"tool": "run", "input": {"command": f"sleep {marker}"}}]}})
    before = Fingerprint.take(ws)
    proc = spawn("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--fake-script", script,
                 "--sandbox", "bwrap")  # fmt: skip
    try:
        wait_for(lambda: bool(live_processes(cmdline)), "the agent's command to start")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    wait_for(lambda: not live_processes(cmdline), "the sandboxed command to die with agentwaves", timeout=30)
    res = agentwaves("status", "--json", "--repo", ws.repo)
    assert json.loads(res.stdout)["state"] == "interrupted"
    before.assert_unchanged(ws)
