"""The sandbox of `run`, end to end through `agentwaves execute`: read-only system, no network, warnings."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import latest_state
from tests.reliability.support import (
    Fingerprint,
    Workspace,
    make_workspace,
    run_dirs,
    tasks_of,
    tool_results,
)
from tests.reliability.support import (
    agentwaves_forked as agentwaves,
)

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


class Listener:
    """A TCP server on 127.0.0.1 that records what each connection sends."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.received.append(conn.recv(100))
                except OSError:
                    self.received.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    try:
        yield server
    finally:
        server.close()


def connect_command(port: int) -> str:
    code = (
        f"import socket; s = socket.create_connection(('127.0.0.1', {port}), timeout=5); "
        "s.sendall(b'agentwaves-was-here'); s.close(); print('CONNECTED')"
    )
    return f'python3 -c "{code}"'


def execute(
    ws: Workspace, calls: list[dict[str, Any]], sandbox: str, env: dict[str, str] | None = None
) -> Any:
    plan = ws.plan([{"id": "a", "title": "A", "files": ["a.py"]}])
    script = ws.script({"tasks": {"a": [*calls, {"tool": "finish", "input": {"summary": "tried"}}]}})
    return agentwaves("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--fake-script", script,
                      "--sandbox", sandbox, env=env)  # fmt: skip


@needs_bwrap
def test_bwrap_blocks_system_writes_and_the_network(
    make_repo: Callable[..., Path], tmp_path: Path, listener: Listener
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    target = Path(f"/etc/agentwaves-x-{uuid.uuid4().hex}")
    calls = [
        {"tool": "run", "input": {"command": f"touch {target}"}},
        {"tool": "run", "input": {"command": connect_command(listener.port)}},
        {"tool": "run", "input": {"command": "echo ok > inside.txt && cat inside.txt"}},
    ]
    before = Fingerprint.take(ws)
    res = execute(ws, calls, "bwrap")
    assert res.returncode == 0, res.stderr
    assert "without a sandbox" not in res.stderr
    touch, connect, inside = tool_results(ws.repo, "a")[:3]
    assert touch["is_error"] and "Read-only file system" in touch["result"]
    assert not target.exists()
    assert connect["is_error"] and "CONNECTED" not in connect["result"]
    assert listener.received == []
    assert not inside["is_error"] and "ok" in inside["result"]  # the worktree itself is writable
    assert tasks_of(latest_state(ws.repo))["a"]["state"] == "done"
    before.assert_unchanged(ws)


def test_without_a_sandbox_the_network_works_and_a_warning_is_printed_once(
    make_repo: Callable[..., Path], tmp_path: Path, listener: Listener
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    before = Fingerprint.take(ws)
    res = execute(ws, [{"tool": "run", "input": {"command": connect_command(listener.port)}}], "none")
    assert res.returncode == 0, res.stderr
    (connect,) = tool_results(ws.repo, "a")[:1]
    assert not connect["is_error"] and "CONNECTED" in connect["result"]
    assert listener.received == [b"agentwaves-was-here"]
    warnings = [line for line in res.stderr.splitlines() if "without a sandbox" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning:")
    assert "--sandbox none" in warnings[0]
    assert "without a sandbox" not in res.stdout
    before.assert_unchanged(ws)


def path_without_bwrap(tmp_path: Path) -> str:
    """PATH with every directory holding ``bwrap`` replaced by a copy (of symlinks) that lacks it."""
    dirs = []
    for i, d in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if d and os.path.exists(os.path.join(d, "bwrap")):
            shadow = tmp_path / f"path-{i}"
            shadow.mkdir()
            for name in os.listdir(d):
                if name != "bwrap":
                    (shadow / name).symlink_to(os.path.join(d, name))
            d = str(shadow)
        dirs.append(d)
    return os.pathsep.join(dirs)


def test_sandbox_bwrap_without_bwrap_is_a_one_line_error(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    env = {"PATH": path_without_bwrap(tmp_path)}
    before = Fingerprint.take(ws)
    res = execute(ws, [], "bwrap", env=env)
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "agentwaves: error: bubblewrap (bwrap) is not installed: apt-get install bubblewrap, "
        "or use --sandbox none"
    )
    assert run_dirs(ws.repo) == []  # refused before the run exists
    # auto falls back to no sandbox, with one warning that says how to get one
    res = execute(ws, [], "auto", env=env)
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if "without a sandbox" in line]
    assert len(warnings) == 1 and "install bubblewrap" in warnings[0]
    before.assert_unchanged(ws)
