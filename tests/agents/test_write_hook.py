"""The write hook's channel: the real hook script, run by python, against the real socket server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agentwaves.agents.drivers.write_hook import MATCHER, WriteHook


def _ask(hook: WriteHook, event: dict[str, object]) -> subprocess.CompletedProcess[str]:
    command = hook.settings()["PreToolUse"][0]["hooks"][0]["command"]
    return subprocess.run(
        command, shell=True, input=json.dumps(event), capture_output=True, text=True, timeout=30
    )


def test_the_hook_denies_a_refused_path_allows_others_and_fails_open(tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    (worktree / "src").mkdir(parents=True)
    asked: list[str] = []

    def guard(path: str) -> str | None:
        asked.append(path)
        return f"{path} is leased" if path == "src/shared.py" else None

    with WriteHook(worktree, guard) as hook:
        assert hook.settings()["PreToolUse"][0]["matcher"] == MATCHER
        assert (hook.dir / "hook.py").stat().st_mode & 0o222 == 0  # read-only script
        big = {"file_path": str(worktree / "src" / "shared.py"), "content": "x" * 100_000}
        write = {"tool_name": "Write", "cwd": str(worktree), "tool_input": big}
        res = _ask(hook, write)
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)["hookSpecificOutput"]
        assert out == {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "src/shared.py is leased",
        }
        # relative to cwd, through "..", a notebook: all as paths of the worktree
        for tool_input in (
            {"file_path": "src/other.py"},
            {"file_path": str(worktree / "src" / ".." / "README.md")},
            {"notebook_path": str(worktree / "n.ipynb")},
        ):
            res = _ask(hook, {"tool_name": "Edit", "cwd": str(worktree), "tool_input": tool_input})
            assert (res.returncode, res.stdout) == (0, "")
        # outside the worktree, or no path: the jail decides, the guard is not asked
        for tool_input in ({"file_path": str(tmp_path / "elsewhere.py")}, {}):
            assert (
                _ask(hook, {"tool_name": "Write", "cwd": str(worktree), "tool_input": tool_input}).stdout
                == ""
            )
        assert asked == ["src/shared.py", "src/other.py", "README.md", "n.ipynb"]
        socket_path, script = hook.socket_path, hook.dir / "hook.py"
        copy = tmp_path / "hook.py"
        copy.write_text(script.read_text())
    assert not socket_path.exists()
    # the channel is down: the hook allows (fails open; the end-of-task check is the backstop)
    res = subprocess.run(
        [sys.executable, "-I", str(copy), str(socket_path)],
        input=json.dumps(write), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert (res.returncode, res.stdout) == (0, "")
    # garbage input: allowed too, no traceback
    res = subprocess.run(
        [sys.executable, "-I", str(copy), str(socket_path)], input="{", capture_output=True, text=True
    )
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
