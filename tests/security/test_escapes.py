"""Escapes from the tools and the sandbox (issue 13, items 5-11): races, links, sockets, setuid bits,
conflicted symlinks, terminal escapes and paths git treats as ``.git``."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.support import wait_for
from tests.security.support import Hostile, finish, hostile, needs_bwrap, run, tool

pytestmark = [needs_bwrap, pytest.mark.slow]


def test_item5_sibling_swapping_a_symlink_never_redirects_the_file_tools(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """One task swaps a directory and a symlink to the sentinel (renameat2 RENAME_EXCHANGE) while its sibling
    in the same worktree writes and reads through that directory: nothing reaches the sentinel. The swaps
    start before the sibling's first attempt and go on until it has made its last (``.writer-done``)."""
    h = hostile(make_repo, tmp_path, config={"max_agents": 2, "max_turns": 130})
    swapper = f"""
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("d", exist_ok=True)
open("d/secret.txt", "w").write("inside\\n")
os.symlink({str(h.sentinel)!r}, "l")
open(".swapping", "w").close()
end, n = time.time() + 60, 0
while time.time() < end and (n % 256 or not os.path.exists(".writer-done")):
    libc.renameat2(-100, b"d", -100, b"l", 2)
    n += 1
if os.path.islink("d"):
    libc.renameat2(-100, b"d", -100, b"l", 2)
print("swaps", n)
"""
    wait = "for i in $(seq 100); do test -e .swapping && exit 0; sleep 0.05; done; exit 1"
    attempts = []
    for i in range(60):  # 126 attempts, 60 of them reads, all while the swaps go on
        attempts += [
            tool("write_file", path=f"d/w{i}.txt", content="x\n"),
            tool("read_file", path="d/secret.txt"),
        ]
        if i % 20 == 0:
            attempts += [tool("list_files", path="d"), tool("search", pattern="touch", path="d")]
    tasks = [
        {"id": "swap", "title": "Swap", "group": "g", "files": ["swap.py", "l", ".swapping"]},
        # side by side, in the same group's worktree
        {"id": "writer", "title": "Writer", "group": "g", "files": ["writer.txt", ".writer-done"]},
    ]
    script = {
        "tasks": {
            "swap": [
                tool("write_file", path="swap.py", content=swapper),
                run("python3 swap.py", 60),
                finish(),
            ],
            "writer": [run(wait, 30), *attempts, run("touch .writer-done"), finish()],
        }
    }
    res = h.execute(tasks, script)
    assert "swaps" in h.results("swap")[1]["result"], h.results("swap")[1]
    writer = h.results("writer")
    assert len(writer) == len(attempts) + 3 and writer[-2]["result"].startswith("exit code: 0"), writer[-2:]
    events = (h.repo / ".agentwaves" / "runs" / h.state()["run_id"] / "events.jsonl").read_text()
    assert events.index('"task_started", "task": "writer"') < events.index('"task_done", "task": "swap"')
    log = (h.repo / ".agentwaves" / "runs" / h.state()["run_id"] / "logs" / "writer.log").read_text()
    assert "do not touch" not in log  # never read the sentinel's secret.txt
    h.assert_contained(res.stdout, res.stderr)


def test_item6_copy_files_never_follows_a_committed_symlink(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """``config -> sentinel`` committed in wave 1: copying config/.env into a wave-2 worktree neither deletes
    nor writes anything outside it."""
    ignore = {".gitignore": "ignored.log\n.env\n"}  # the copy is ignored: never excluded, never committed
    h = hostile(make_repo, tmp_path, config={"copy_files": ["config/.env"]}, files=ignore)
    (h.repo / "config").mkdir()
    (h.repo / "config" / ".env").write_text("USER_SETTING=1\n")
    (h.sentinel / ".env").mkdir()
    (h.sentinel / ".env" / "keep.txt").write_text("keep\n")
    tasks = [
        {"id": "plant", "title": "Plant", "files": ["config"]},
        {"id": "b", "title": "B", "files": ["b.py"], "depends_on": ["plant"]},
    ]
    script = {
        "tasks": {
            "plant": [run(f"rm -rf config && ln -s {h.sentinel} config"), finish()],
            "b": [tool("write_file", path="b.py", content="b = 1\n"), finish()],
        }
    }
    res = h.execute(tasks, script)
    state = h.state()
    groups = {g["name"]: g for w in state["waves"] for g in w["groups"]}
    assert (h.sentinel / ".env" / "keep.txt").read_text() == "keep\n"  # not deleted, not written
    assert "symbolic link" in (groups["b"].get("error") or ""), (groups["b"], res.stderr)
    h.assert_contained(res.stdout, res.stderr)


class _UnixListener:
    """A unix socket server at ``path`` that counts connections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connections = 0
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()
        self.path.unlink(missing_ok=True)


@pytest.fixture
def host_sockets() -> Iterator[tuple[dict[str, str], list[_UnixListener]]]:
    """Sockets a host process serves: in /run (when writable), in the user's runtime dir, and elsewhere."""
    tag = uuid.uuid4().hex[:10]
    runtime = Path("/var/tmp") / f"aw-runtime-{tag}"
    runtime.mkdir()
    paths = [runtime / "bus", Path("/var/tmp") / f"aw-docker-{tag}.sock"]
    if os.access("/run", os.W_OK):
        paths.append(Path("/run") / f"aw-docker-{tag}.sock")
    listeners = [_UnixListener(p) for p in paths]
    try:
        yield {"XDG_RUNTIME_DIR": str(runtime)}, listeners
    finally:
        for listener in listeners:
            listener.close()
        runtime.rmdir()


def test_item7_host_unix_sockets_are_unreachable(
    make_repo: Callable[..., Path], tmp_path: Path, host_sockets: tuple[dict[str, str], list[_UnixListener]]
) -> None:
    env, listeners = host_sockets
    h = hostile(make_repo, tmp_path)
    h.env.update(env)
    connect = "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1]); print('CONNECTED')"
    probe = "; ".join(f'python3 -c "{connect}" {lst.path}' for lst in listeners)
    tasks = [{"id": "evil", "title": "Evil", "files": ["evil.py"]}]
    res = h.execute(tasks, {"tasks": {"evil": [run(probe), finish()]}})
    out = h.results("evil")[0]["result"]
    assert "CONNECTED" not in out, out
    assert [lst.connections for lst in listeners] == [0] * len(listeners)
    h.assert_contained(res.stdout, res.stderr)


def _homes(tag: str) -> list[Path]:
    base = Path(tempfile.gettempdir())
    return [p for p in base.glob("agentwaves-home-*") if (p / f"suid-{tag}").exists()]


def _ran(h: Hostile, task: str) -> bool:
    """Whether ``task`` has a first tool result in its transcript yet (which may be half written)."""
    try:
        return len(h.results(task)) >= 1
    except (OSError, IndexError, ValueError):
        return False


def test_item8_no_setuid_bits_survive_and_homes_are_swept_after_a_crash(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    h = hostile(make_repo, tmp_path)
    tag = uuid.uuid4().hex[:10]
    plant = (
        f'cp /bin/true "$HOME/suid-{tag}" && chmod 6755 "$HOME/suid-{tag}" && cp /bin/true wt-suid-{tag}'
        f" && chmod 6755 wt-suid-{tag} && mkdir -p sgdir && chmod 2775 sgdir"
        " && touch sgdir/f && chmod 4755 sgdir/f"
    )
    tasks = [{"id": "evil", "title": "Evil", "files": ["evil.py"]}]
    script = {
        "tasks": {"evil": [run(plant), run("test -e .slept || { touch .slept; sleep 60; }", 120), finish()]}
    }
    plan, script_path = h.plan(tasks), h.script(script)
    env = {**os.environ, "ANTHROPIC_API_KEY": h.canary}
    args = [sys.executable, "-m", "agentwaves", "execute", "--repo", str(h.repo), "--plan", str(plan),
            "--llm", "fake", "--fake-script", str(script_path), "--sandbox", "bwrap"]  # fmt: skip
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _homes(tag) != [] and _ran(h, "evil"), "the setuid command", timeout=60)
        assert h.results("evil")[0]["result"].startswith("exit code: 0"), h.results("evil")[0]
        worktrees = list((h.repo / ".agentwaves" / "worktrees").rglob(f"wt-suid-{tag}"))
        found = [*_homes(tag), *worktrees, *(w.parent / "sgdir" for w in worktrees)]
        found += [w.parent / "sgdir" / "f" for w in worktrees]
        found += [home / f"suid-{tag}" for home in _homes(tag)]
        assert worktrees and len(found) >= 5
        setid = [p for p in found if os.lstat(p).st_mode & (stat.S_ISUID | stat.S_ISGID)]
        assert setid == [], [(str(p), oct(os.lstat(p).st_mode)) for p in setid]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert _homes(tag), "the crash left the private HOME behind (as a crash does)"
    # the resumed task starts on a fresh worktree: without its sleep this time (the run re-reads the script)
    script["tasks"]["evil"][1] = run("true")
    assert h.script(script) == script_path
    resumed = h.agentwaves("resume", "--repo", h.repo)
    assert resumed.returncode == 0, resumed.stderr
    assert _homes(tag) == [], "resume did not remove the crashed run's private HOME"


def test_item9_conflicted_symlink_into_proc_is_read_from_git_objects(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """Two groups create ``shared`` as symlinks into /proc/self/mem: the merge conflicts; the resolver gets
    its content from git's objects, and the run ends cleanly instead of dying on EIO."""
    h = hostile(make_repo, tmp_path)
    tasks = [
        {"id": "a", "title": "A", "files": ["a.py"]},
        {"id": "b", "title": "B", "files": ["b.py"]},
    ]
    script = {
        "tasks": {
            "a": [run("ln -s /proc/self/mem shared"), finish()],
            "b": [run("ln -s /proc/self/../self/mem shared"), finish()],
        },
        "resolver": "fail",
    }
    res = h.execute(tasks, script)
    state = h.state()
    assert "Traceback" not in res.stderr, res.stderr
    assert state["state"] in ("done", "failed"), state["state"]
    assert res.returncode == (0 if state["state"] == "done" else 1), res.stderr
    events = (h.repo / ".agentwaves" / "runs" / state["run_id"] / "events.jsonl").read_text()
    assert '"merge_conflict"' in events and ('"resolve_failed"' in events or '"resolved"' in events)
    h.assert_contained(res.stdout, res.stderr)


HOSTILE_TEXT = "\x1b]52;c;cHduZWQ=\x07\x1b[1A\x1b[2K\x1b]0;owned\x07\x9b2J\u202e"


def test_item10_agent_text_reaches_the_terminal_inert(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    h = hostile(make_repo, tmp_path)
    tasks = [{"id": "evil", "title": "Evil", "files": ["evil.py"]}]
    calls = [
        tool("write_file", path="evil.py", content=f"x = '{HOSTILE_TEXT}'\n"),
        tool("write_file", path="undeclared.txt", content=HOSTILE_TEXT),
        tool("read_file", path="evil.py"),
        finish(summary=f"done {HOSTILE_TEXT}", notes=HOSTILE_TEXT),
    ]
    res = h.execute(tasks, {"tasks": {"evil": calls}})
    assert h.tasks()["evil"]["state"] == "done", res.stderr
    run_id = h.state()["run_id"]
    outputs = {
        "execute": res.stdout + res.stderr,
        "review": h.agentwaves("review", run_id, "--repo", h.repo, forked=True).stdout,
        "review --diff": h.agentwaves("review", run_id, "--diff", "--repo", h.repo, forked=True).stdout,
        "logs": h.agentwaves("logs", run_id, "evil", "--repo", h.repo, forked=True).stdout,
        "status": h.agentwaves("status", run_id, "--repo", h.repo, forked=True).stdout,
    }
    for name, text in outputs.items():
        raw = [c for c in ("\x1b", "\x07", "\x9b", "\u202e") if c in text]
        assert raw == [], f"{name} printed raw control characters {raw!r}"
    assert "undeclared writes by evil" in outputs["review"]
    assert "\\x1b]52;c;" in outputs["review --diff"]  # shown, visibly, not obeyed
    h.assert_contained(*outputs.values())


def test_item11_paths_git_treats_as_dot_git_are_refused_by_the_tool(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    h = hostile(make_repo, tmp_path)
    bad = [
        ".git /hooks/post-commit",
        ".GIT./config",
        "git~1/hooks/x",
        "sub/.git /x",
        ".git::$INDEX_ALLOCATION/x",
    ]
    calls = [tool("write_file", path=p, content="#!/bin/sh\n") for p in bad]
    tasks = [{"id": "evil", "title": "Evil", "files": ["evil.py"]}]
    script = {"tasks": {"evil": [*calls, tool("write_file", path="evil.py", content="x = 1\n"), finish()]}}
    res = h.execute(tasks, script)
    results = h.results("evil")
    for path, result in zip(bad, results, strict=False):
        assert result["is_error"] and result["result"].startswith("refused:"), (path, result)
        assert ".git" in result["result"]
    assert h.tasks()["evil"]["state"] == "done", (h.tasks()["evil"]["error"], res.stderr)
    h.assert_contained(res.stdout, res.stderr)
