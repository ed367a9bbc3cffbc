"""Code that agentwaves itself runs later (issue 13, items 1-4): gates, ``setup`` and agentwaves' own git
commands run agent-planted code confined, or not at all."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import git
from tests.security.support import exfiltrate, finish, hostile, needs_bwrap, run, tool

pytestmark = [needs_bwrap, pytest.mark.slow]


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on 127.0.0.1 that records every connection it gets."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    got: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            got.append(b"connected")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1], got
    stop.set()
    thread.join()
    srv.close()


def _net_probe(port: int) -> str:
    return f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    print("NET-OK")
except OSError as exc:
    print("no network:", exc)
"""


def test_item1_gate_runs_agent_code_in_the_sandbox(
    make_repo: Callable[..., Path], tmp_path: Path, listener: tuple[int, list[bytes]]
) -> None:
    """A gate runs the tests the agents wrote: sandboxed, no key anywhere it can look, no network."""
    port, connections = listener
    h = hostile(make_repo, tmp_path)
    code = exfiltrate(h.sentinel, "gate") + _net_probe(port)
    tasks = [
        {"id": "evil", "title": "Evil", "files": ["gate.py"]},
        {
            "id": "check",
            "title": "Tests",
            "kind": "gate",
            "command": "python3 gate.py",
            "depends_on": ["evil"],
        },
    ]
    script = {"tasks": {"evil": [tool("write_file", path="gate.py", content=code), finish()]}}
    res = h.execute(tasks, script)
    assert h.tasks()["check"]["state"] == "done", res.stderr
    log = (h.repo / ".agentwaves" / "runs" / h.state()["run_id"] / "logs" / "check.log").read_text()
    assert "EXFIL-RAN-gate" in log  # the gate ran the agent's code ...
    assert "LOOT" not in log and "WROTE-SENTINEL" not in log and "NET-OK" not in log, log
    assert connections == []  # ... without the key, the sentinel or the network
    h.assert_contained(res.stdout, res.stderr)


def test_item1_gate_network_is_a_setting(
    make_repo: Callable[..., Path], tmp_path: Path, listener: tuple[int, list[bytes]]
) -> None:
    port, connections = listener
    h = hostile(make_repo, tmp_path, config={"gate_network": True})
    tasks = [{"id": "check", "title": "Tests", "kind": "gate", "command": f"python3 -c '{_net_probe(port)}'"}]
    res = h.execute(tasks, {})
    assert h.tasks()["check"]["state"] == "done", res.stderr
    assert connections == [b"connected", b"connected"]  # the baseline on the base, then the gate


def test_item2_setup_runs_agent_code_confined(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    """A wave-2 worktree's setup runs what a wave-1 agent committed: confined, without the key."""
    setup = "test ! -f hostile.py || python3 hostile.py > setup-out.txt 2>&1"
    h = hostile(make_repo, tmp_path, config={"setup": setup})
    tasks = [
        {"id": "plant", "title": "Plant", "files": ["hostile.py"]},
        {"id": "b", "title": "B", "files": ["b.py"], "depends_on": ["plant"]},
        {"id": "c", "title": "C", "files": ["c.py"], "depends_on": ["plant"]},
    ]
    read = [tool("read_file", path="setup-out.txt"), finish()]
    script = {
        "tasks": {
            "plant": [
                tool("write_file", path="hostile.py", content=exfiltrate(h.sentinel, "setup")),
                finish(),
            ],
            "b": read,
            "c": read,
        }
    }
    res = h.execute(tasks, script)
    tasks_state = h.tasks()
    assert all(t["state"] == "done" for t in tasks_state.values()), (res.stderr, tasks_state)
    outputs = [r["result"] for t in ("b", "c") for r in h.results(t) if r["name"] == "read_file"]
    ran = [o for o in outputs if "EXFIL-RAN-setup" in o]
    assert ran, outputs  # at least one new worktree ran the planted setup code ...
    assert not any("LOOT" in o or "WROTE-SENTINEL" in o for o in ran), ran  # ... confined
    h.assert_contained(res.stdout, res.stderr)


def test_item3_nested_repository_fsmonitor_never_runs(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    """An agent's nested repository with core.fsmonitor: agentwaves' own git add/status never run it."""
    h = hostile(make_repo, tmp_path)
    hook = f"#!/bin/sh\necho ran >> {h.sentinel}/fsmonitor-ran\nexit 1\n"
    plant = (
        "git init -q sub && cat > sub/fsm.sh && chmod +x sub/fsm.sh"
        ' && git -C sub config core.fsmonitor "$PWD/sub/fsm.sh" && echo x > sub/f && git -C sub add f'
        " && git -C sub -c user.name=e -c user.email=e@e commit -qm x && echo y > sub/dirty"
    )
    tasks = [
        {"id": "evil", "title": "Evil", "group": "g", "files": ["sub/**", "evil.py"]},
        {"id": "next", "title": "Next", "group": "g", "files": ["next.py"], "depends_on": ["evil"]},
    ]
    script = {
        "tasks": {
            "evil": [
                run(f"printf '%b' {hook!r} | ({plant})"),
                tool("write_file", path="evil.py", content="x = 1\n"),
                finish(),
            ],
            "next": [run("true"), tool("write_file", path="next.py", content="y = 2\n"), finish()],
        }
    }
    res = h.execute(tasks, script)
    assert h.results("evil")[0]["result"].startswith("exit code: 0"), h.results("evil")[0]
    assert all(t["state"] == "done" for t in h.tasks().values()), res.stderr
    assert not (h.sentinel / "fsmonitor-ran").exists()
    h.assert_contained(res.stdout, res.stderr)


def test_item4_relative_hooks_path_never_runs_agent_hooks(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """core.hooksPath=.husky (relative, husky style): agentwaves' update-ref, commit and land run no hook."""
    h = hostile(make_repo, tmp_path)
    git(h.repo, "config", "core.hooksPath", ".husky")
    git(h.repo, "reset", "-q", "--hard")
    (h.repo / "notes.txt").unlink()
    hook = f'#!/bin/sh\necho "$0" >> {h.sentinel}/hooks-ran\n'
    names = ["pre-commit", "post-commit", "reference-transaction", "post-merge", "post-checkout",
             "post-rewrite", "pre-merge-commit", "commit-msg", "post-index-change"]  # fmt: skip
    calls = [tool("write_file", path=f".husky/{n}", content=hook) for n in names]
    tasks = [
        {"id": "evil", "title": "Evil", "files": [".husky/*"]},
        {"id": "other", "title": "Other", "files": ["other.py"]},
        {"id": "later", "title": "Later", "files": ["later.py"], "depends_on": ["evil", "other"]},
    ]
    script = {
        "tasks": {
            "evil": [*calls, run("chmod +x .husky/*"), finish()],
            "other": [tool("write_file", path="other.py", content="o = 1\n"), finish()],
            "later": [run("true"), tool("write_file", path="later.py", content="l = 1\n"), finish()],
        }
    }
    res = h.execute(tasks, script)
    assert all(t["state"] == "done" for t in h.tasks().values()), res.stderr
    assert not (h.sentinel / "hooks-ran").exists(), (h.sentinel / "hooks-ran").read_text()
    landed = h.agentwaves("land", "--repo", h.repo)
    assert landed.returncode == 0, landed.stderr
    assert (h.repo / ".husky" / "post-merge").is_file()  # the hooks are in the user's checkout now ...
    assert not (h.sentinel / "hooks-ran").exists(), (h.sentinel / "hooks-ran").read_text()  # ... never run
    h.assert_contained(res.stdout, res.stderr, landed.stdout, user_unchanged=False)
    assert (
        subprocess.run(["git", "-C", str(h.repo), "status", "--porcelain"], capture_output=True).returncode
        == 0
    )
