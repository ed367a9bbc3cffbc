"""Interrupts and closed outputs (issue 14 items 6 and 7), with real subprocesses, pipes and signals.

- `agentwaves execute | head -1`: the closed stdout never changes the run's outcome or its state.
- SIGINT / SIGTERM: every agent command stops (also without a sandbox), the run is recorded `interrupted`
  with no task running, private HOMEs and pids cgroups are gone, the summary says how to resume, the exit
  code is 130 / 143, and `resume` finishes the run. A second Ctrl-C exits at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from agentwaves.sandbox.proc import pids_cgroup_base
from tests.e2e.helpers import latest_state, tree_files, wave_commits
from tests.reliability.support import agentwaves_forked as agentwaves
from tests.reliability.support import events, make_workspace, tasks_of, wait_for


def test_closed_stdout_never_changes_the_outcome(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    ws = make_workspace(make_repo, tmp_path)
    plan = ws.plan(
        [
            {"id": "a", "title": "A", "files": ["src/a.py"], "estimate": 1},
            {"id": "b", "title": "B", "files": ["src/b.py"], "estimate": 1},
            {"id": "c", "title": "C", "files": ["src/c.py"], "depends_on": ["a", "b"], "estimate": 1},
        ]
    )
    rc = tmp_path / "rc"
    cmd = (
        f"'{sys.executable}' -m agentwaves execute --repo '{ws.repo}' --plan '{plan}' --llm fake "
        f"--sandbox none --fake-time-scale 0.3 | head -1; echo ${{PIPESTATUS[0]}} > '{rc}'"
    )
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=180)
    assert len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert rc.read_text().strip() == "0", proc.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done" and state["error"] is None
    assert {t["state"] for t in tasks_of(state).values()} == {"done"}
    assert [s.split()[2] for s, _ in wave_commits(ws.repo, state)] == ["1", "2"]
    status = agentwaves("status", "--json", "--repo", ws.repo)
    assert json.loads(status.stdout)["state"] == "done"


def _alive_with(token: str) -> list[int]:
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            if token.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(pid))
        except OSError:
            continue
    return found


def _leftover_cgroups(pid: int) -> list[Path]:
    base = pids_cgroup_base()
    return sorted(base.glob(f"agentwaves-{pid}-*")) if base is not None else []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_stops_everything_and_the_run_resumes(
    make_repo: Callable[..., Path], tmp_path: Path, signum: int
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    token = uuid.uuid4().hex
    ticking = f"for i in $(seq 1200); do echo {token} >> tick.txt; sleep 0.05; done"
    script = ws.script(
        {
            "tasks": {
                "a": [
                    {"tool": "run", "input": {"command": ticking, "timeout": 120}},
                    {"tool": "write_file", "input": {"path": "src/a.py", "content": "A = 1\n"}},
                    {"tool": "finish", "input": {"summary": "a"}},
                ]
            }
        }
    )
    plan = ws.plan(
        [
            {"id": "a", "title": "A", "files": ["src/a.py"], "estimate": 1},
            {"id": "b", "title": "B", "files": ["src/b.py"], "estimate": 1},
            {"id": "c", "title": "C", "files": ["src/c.py"], "depends_on": ["a", "b"], "estimate": 1},
        ]
    )
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentwaves", "execute", "--repo", str(ws.repo), "--plan", str(plan),
         "--llm", "fake", "--fake-script", str(script), "--sandbox", "none"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: bool(_alive_with(token)), "task a's command to run")
        wait_for(
            lambda: any(e["type"] == "task_done" and e["task"] == "b" for e in events(ws.repo)), "b done"
        )
        assert list(tmpdir.glob("agentwaves-home-*")), "the private HOME exists while the command runs"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err
    run = latest_state(ws.repo)["run_id"]
    assert f"agentwaves resume {run}" in out + err
    assert "Traceback" not in err
    assert not _alive_with(token), "the agent's command kept running after agentwaves exited"
    assert not list(tmpdir.glob("agentwaves-home-*")), "a private HOME was left behind"
    assert not _leftover_cgroups(proc.pid), "a pids cgroup was left behind"
    state = latest_state(ws.repo)
    assert state["state"] == "interrupted"
    assert "running" not in {t["state"] for t in tasks_of(state).values()}
    assert tasks_of(state)["b"]["state"] == "done"
    status = json.loads(agentwaves("status", "--json", "--repo", ws.repo).stdout)
    assert status["state"] == "interrupted"
    assert all(t["state"] != "running" for w in status["waves"] for g in w["groups"] for t in g["tasks"])

    quick = ws.script({"tasks": {}}, name="quick.yaml")
    res = agentwaves("resume", "--repo", ws.repo, "--fake-script", quick)
    assert res.returncode == 0, res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    assert tasks_of(state)["b"]["attempts"] == 1
    assert {"src/a.py", "src/b.py", "src/c.py"} <= set(tree_files(ws.repo, state["branch"]))
    assert [s.split()[2] for s, _ in wave_commits(ws.repo, state)] == ["1", "2"]


def test_a_second_ctrl_c_exits_at_once(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    """Task a waits for a slow model answer (60 s of simulated latency): the first Ctrl-C waits for it,
    the second one exits at once. The run is then interrupted, and resumable."""
    ws = make_workspace(make_repo, tmp_path)
    plan = ws.plan([{"id": "a", "title": "A", "files": ["src/a.py"], "estimate": 1}])
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentwaves", "execute", "--repo", str(ws.repo), "--plan", str(plan),
         "--llm", "fake", "--sandbox", "none", "--fake-time-scale", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: any(e["type"] == "model_call" for e in events(ws.repo)), "the first model call")
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None  # the first one waits for the agent
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "exiting now" in err and "Traceback" not in err
    status = json.loads(agentwaves("status", "--json", "--repo", ws.repo).stdout)
    assert status["state"] == "interrupted"
    assert all(t["state"] != "running" for w in status["waves"] for g in w["groups"] for t in g["tasks"])
    res = agentwaves("resume", "--repo", ws.repo, "--fake-time-scale", "0")
    assert res.returncode == 0, res.stderr
    assert latest_state(ws.repo)["state"] == "done"


def test_ctrl_c_ends_the_live_display_cleanly(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    """On a terminal (a real pty) the live display is stopped before the summary: the cursor it hid is
    shown again, the summary and the resume hint follow, exit 130."""
    import pty
    import select

    ws = make_workspace(make_repo, tmp_path)
    plan = ws.plan([{"id": "a", "title": "A", "files": ["src/a.py"], "estimate": 1}])
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentwaves", "execute", "--repo", str(ws.repo), "--plan", str(plan),
         "--llm", "fake", "--sandbox", "none", "--fake-time-scale", "4"],
        stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    os.close(slave)
    out = bytearray()

    def drain(until: float) -> None:
        while time.monotonic() < until:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                out.extend(chunk)
            elif proc.poll() is not None:
                return

    try:
        wait_for(lambda: any(e["type"] == "model_call" for e in events(ws.repo)), "the first model call")
        drain(time.monotonic() + 0.5)
        proc.send_signal(signal.SIGINT)
        drain(time.monotonic() + 30)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 130
    assert "\x1b[?25l" in text and text.rfind("\x1b[?25h") > text.rfind("\x1b[?25l")
    run = latest_state(ws.repo)["run_id"]
    assert "interrupted" in text[text.rfind("\x1b[?25h") :]
    assert f"agentwaves resume {run}" in text + proc.stderr.read().decode()  # type: ignore[union-attr]
