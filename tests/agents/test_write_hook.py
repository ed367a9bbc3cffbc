"""The write hook's channel: real HTTP requests, as Claude Code sends them, against the real server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from agentwaves.agents.drivers.write_hook import MATCHER, WriteHook


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, body, {"content-type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _ask(hook: WriteHook, event: dict[str, object]) -> dict[str, object]:
    status, body = _post(hook.url, json.dumps(event).encode())
    assert status == 200
    answer = json.loads(body)
    assert isinstance(answer, dict)
    return answer


def test_the_hook_denies_a_refused_path_allows_others_and_fails_closed(tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    (worktree / "src").mkdir(parents=True)
    asked: list[str] = []

    def guard(path: str) -> str | None:
        asked.append(path)
        return f"{path} is leased" if path == "src/shared.py" else None

    with WriteHook(worktree, guard) as hook:
        (entry,) = hook.settings()["PreToolUse"]
        assert entry["matcher"] == MATCHER
        (spec,) = entry["hooks"]
        # Claude Code POSTs to loopback itself; an unanswered hook refuses the write
        assert spec == {"type": "http", "url": hook.url, "timeout": 30, "onFailure": "block"}
        assert hook.url.startswith("http://127.0.0.1:") and hook.url.endswith("/" + hook.token)
        big = {"file_path": str(worktree / "src" / "shared.py"), "content": "x" * 1_000_000}
        write = {"tool_name": "Write", "cwd": str(worktree), "tool_input": big}
        assert _ask(hook, write) == {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": "src/shared.py is leased",
            }
        }
        # relative to cwd, through "..", a notebook: all as paths of the worktree
        for tool_input in (
            {"file_path": "src/other.py"},
            {"file_path": str(worktree / "src" / ".." / "README.md")},
            {"notebook_path": str(worktree / "n.ipynb")},
        ):
            assert _ask(hook, {"tool_name": "Edit", "cwd": str(worktree), "tool_input": tool_input}) == {}
        # outside the worktree, in .git, or no path: the jail decides, the guard is not asked
        for tool_input in ({"file_path": str(tmp_path / "elsewhere.py")}, {"file_path": ".git/x"}, {}):
            assert _ask(hook, {"tool_name": "Write", "cwd": str(worktree), "tool_input": tool_input}) == {}
        # garbage input: allowed (the end-of-task check still runs), no error
        assert _post(hook.url, b"{") == (200, b"{}")
        # without the token: 404, and the guard is not asked
        port_url = hook.url.rsplit("/", 1)[0]
        for _ in range(5):  # with a large body too: the sender gets the 404, not a broken pipe
            assert _post(port_url + "/", json.dumps(write).encode())[0] == 404
            assert _post(port_url + "/wrong", json.dumps(write).encode())[0] == 404
        assert asked == ["src/shared.py", "src/other.py", "README.md", "n.ipynb"]
        url = hook.url
    with pytest.raises(urllib.error.URLError):  # stopped with the claude process it served
        _post(url, json.dumps(write).encode())


def test_a_guard_that_fails_refuses_nothing(tmp_path: Path) -> None:
    def guard(path: str) -> str | None:
        raise RuntimeError("broken")

    with WriteHook(tmp_path, guard) as hook:
        event = {"tool_name": "Write", "cwd": str(tmp_path), "tool_input": {"file_path": "a.py"}}
        assert _ask(hook, event) == {}


def test_loopback_is_exempted_from_a_proxy() -> None:
    assert WriteHook.env({"PATH": "/bin"}) == {}
    assert WriteHook.env({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "corp.example"}) == {
        "NO_PROXY": "corp.example,127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    assert WriteHook.env({"http_proxy": "http://p:1", "no_proxy": "127.0.0.1"})["no_proxy"] == "127.0.0.1"
