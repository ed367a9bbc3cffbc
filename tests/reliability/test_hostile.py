"""Hostile agents, end to end: a scripted agent tries to get out of its worktree, and every attempt is refused
or contained. Each case runs `agentwaves execute` in a new process (forked from a preloaded interpreter,
``tests/e2e/forkserver.py``; bounded by a timeout) beside a harmless task, and compares the user's
repository, its ``.git``, a sentinel folder beside it and a bare remote before and after
(:class:`~tests.reliability.support.Fingerprint`).

The path attempts go through the file tools, which confine paths in every mode, so they also run with
``--sandbox none``; the attempts made with ``run`` need bubblewrap.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentwaves.sandbox.proc import pids_cgroup_base
from tests.e2e.helpers import git, latest_state
from tests.reliability.support import (
    Fingerprint,
    Workspace,
    agentwaves_forked,
    group_commits,
    make_workspace,
    run_dirs,
    tasks_of,
    tool_results,
)

REFUSED = "refused"  # the tool refused (or rejected the input): an error result, nothing done
FAILS = "fails"  # a `run` command that must exit non-zero (or be killed)
ANY = "any"  # set-up steps, or attempts whose result does not matter (the fingerprint decides)
BOMB_SLEEP = f"{37 + uuid.uuid4().int % 1000}.25"  # a distinctive `sleep` argument, to find leftovers


@dataclass
class Case:
    """One hostile script: (tool call, expected result) pairs; the task then calls ``finish``."""

    calls: Callable[[Workspace], list[tuple[dict[str, Any], str]]]
    sandboxes: tuple[str, ...] = ("bwrap", "none")
    config: dict[str, Any] = field(default_factory=dict)
    finish: bool = True
    task_state: str = "done"


def tool(name: str, **inp: Any) -> dict[str, Any]:
    return {"tool": name, "input": inp}


def run(command: str, timeout: float | None = None) -> dict[str, Any]:
    return tool("run", command=command, **({"timeout": timeout} if timeout is not None else {}))


def dotdot(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    return [
        (tool("write_file", path="../escape.txt", content="x"), REFUSED),
        (tool("write_file", path="../../../../escape.txt", content="x"), REFUSED),
        (tool("write_file", path="src/../../escape.txt", content="x"), REFUSED),
        (tool("edit_file", path="../../../../README.md", old="# demo", new="# pwned"), REFUSED),
        (tool("read_file", path="../../../../notes.txt"), REFUSED),
        (tool("list_files", path="../.."), REFUSED),
        (tool("search", pattern="untracked", path="../../../.."), REFUSED),
    ]


def absolute(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    s, r = ws.sentinel, ws.repo
    return [
        (tool("write_file", path=f"{s}/pwned.txt", content="x"), REFUSED),
        (tool("write_file", path=f"{r}/README.md", content="pwned"), REFUSED),
        (tool("edit_file", path=f"{s}/secret.txt", old="do not", new="please"), REFUSED),
        (tool("read_file", path="/etc/passwd"), REFUSED),
        (tool("read_file", path=f"{s}/secret.txt"), REFUSED),
        (tool("list_files", path="/"), REFUSED),
        (tool("search", pattern="touch", path=str(s)), REFUSED),
    ]


def symlinks(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    s, r = ws.sentinel, ws.repo
    return [
        (run(f"ln -s {s} out && ln -s {s}/secret.txt link && ln -s {r} user && ln -s ../../../.. up"), ANY),
        (run(f"ln {s}/secret.txt hard"), ANY),  # a hard link: works without a sandbox only
        (tool("write_file", path="out/pwned.txt", content="x"), REFUSED),
        (tool("write_file", path="link", content="x"), REFUSED),
        (tool("edit_file", path="link", old="do not", new="please"), REFUSED),
        (tool("read_file", path="link"), REFUSED),
        (tool("read_file", path="out/secret.txt"), REFUSED),
        (tool("write_file", path="user/README.md", content="pwned"), REFUSED),
        (tool("write_file", path="up/escape.txt", content="x"), REFUSED),
        (tool("list_files", path="out"), REFUSED),
        (tool("search", pattern="touch", path="out"), REFUSED),
        (tool("write_file", path="hard", content="replaced, not written through\n"), ANY),
        (run("rm link user up"), ANY),  # `out` stays: it is committed as a symlink, never followed
    ]


def dot_git(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    hook = "#!/bin/sh\ntouch /tmp/agentwaves-hooked\n"
    return [
        (tool("write_file", path=".git/hooks/pre-commit", content=hook), REFUSED),
        (tool("write_file", path=".git/hooks/post-commit", content=hook), REFUSED),
        (tool("write_file", path=".git", content="gitdir: /tmp\n"), REFUSED),
        (tool("edit_file", path=".git", old="gitdir", new="x"), REFUSED),
        (tool("write_file", path=".GIT/config", content="[core]\n"), REFUSED),
        (tool("read_file", path=".git"), REFUSED),
        (tool("write_file", path="sub/.git/config", content="[core]\n"), REFUSED),
    ]


def dot_git_run(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    common = "$(git rev-parse --git-common-dir)"
    return [
        *dot_git(ws),
        (run("git status --short"), ANY),  # reading git works
        (run("echo 'gitdir: /tmp' > .git"), FAILS),
        (run(f"printf '#!/bin/sh\\ntouch /tmp/x\\n' > {common}/hooks/post-commit"), FAILS),
        (run(f"printf '#!/bin/sh\\ntouch /tmp/x\\n' > {ws.repo}/.git/hooks/post-checkout"), FAILS),
        (run("git config core.hooksPath /tmp"), FAILS),
        (run(f"git --git-dir={ws.repo}/.git config user.name pwned"), FAILS),
    ]


def read_outside(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    s = ws.sentinel
    return [
        (tool("read_file", path=f"{s}/secret.txt"), REFUSED),
        (tool("read_file", path="../../../../notes.txt"), REFUSED),
        (run(f"ln -s {s}/secret.txt peek"), ANY),
        (tool("read_file", path="peek"), REFUSED),
        (tool("search", pattern="do not", path="peek"), REFUSED),
        (tool("list_files", path=str(s)), REFUSED),
        (run("rm peek"), ANY),
    ]


def read_outside_run(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    # bubblewrap gives commands a private /tmp, and this test's files live under /tmp: hidden
    return [*read_outside(ws), (run(f"cat {ws.sentinel}/secret.txt"), FAILS)]


def huge_output(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    return [(run("yes | head -c 100000000"), FAILS)]


def endless(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    return [(tool("list_files"), ANY)] * 12


def never_ends(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    return [(run("sleep 1000", timeout=1), FAILS)]


def fork_bomb(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    return [(run(f"for i in $(seq 2000); do sleep {BOMB_SLEEP} & done; wait", timeout=3), FAILS)]


def git_writes(ws: Workspace) -> list[tuple[dict[str, Any], str]]:
    ident = "-c user.name=evil -c user.email=evil@example.com"
    return [
        (tool("write_file", path="evil.py", content="EVIL = 1\n"), ANY),
        (run(f"git {ident} commit --allow-empty -qm evil"), FAILS),
        (run(f"git add -A && git {ident} commit -qm evil"), FAILS),
        (run("git push -q origin HEAD:refs/heads/evil"), FAILS),
        (run("git push -q --force origin HEAD:main"), FAILS),
        (run("git update-ref refs/heads/main HEAD"), FAILS),
        (run("git branch -f main HEAD"), FAILS),
        (run("git tag evil"), FAILS),
        (run("git stash"), FAILS),
        (run("git reset -q --hard HEAD"), FAILS),
    ]


CASES: dict[str, Case] = {
    "dotdot": Case(dotdot),
    "absolute": Case(absolute),
    "symlink_via_run": Case(symlinks),
    "dot_git_tools": Case(dot_git, sandboxes=("none",)),
    "dot_git": Case(dot_git_run, sandboxes=("bwrap",)),
    "read_outside_tools": Case(read_outside, sandboxes=("none",)),
    "read_outside": Case(read_outside_run, sandboxes=("bwrap",)),
    "huge_output": Case(huge_output, sandboxes=("bwrap",)),
    "endless_loop": Case(
        endless, sandboxes=("bwrap",), config={"max_turns": 5}, finish=False, task_state="failed"
    ),
    "never_ends": Case(never_ends, sandboxes=("bwrap", "none")),
    "fork_bomb": Case(fork_bomb, sandboxes=("bwrap", "none")),
    "git_commit_push": Case(git_writes, sandboxes=("bwrap",)),
}
PARAMS = [pytest.param(name, sb, id=f"{name}-{sb}") for name, case in CASES.items() for sb in case.sandboxes]


def leftover_bomb_processes() -> list[int]:
    """Live (not zombie) processes still running the fork bomb's distinctive ``sleep``."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cmdline == f"sleep\0{BOMB_SLEEP}\0".encode() and state != "Z":
            found.append(int(pid))
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("name", "sandbox"), PARAMS)
def test_hostile_agent_is_contained(
    name: str, sandbox: str, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    case = CASES[name]
    ws = make_workspace(make_repo, tmp_path, config=case.config)
    attempts = case.calls(ws)
    calls = [c for c, _ in attempts] + ([tool("finish", summary=f"{name} attempted")] if case.finish else [])
    plan = ws.plan(
        [
            {"id": "evil", "title": "Evil", "files": ["evil.py"]},
            {"id": "good", "title": "Good", "files": ["good.py"]},
        ]
    )
    script = ws.script({"tasks": {"evil": calls}})
    before = Fingerprint.take(ws)
    res = agentwaves_forked("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake",
                            "--fake-script", script, "--sandbox", sandbox, timeout=240)  # fmt: skip
    state = latest_state(ws.repo)
    tasks = tasks_of(state)
    assert tasks["good"]["state"] == "done", res.stderr
    assert tasks["evil"]["state"] == case.task_state, (tasks["evil"]["error"], res.stderr)
    assert res.returncode == (0 if case.task_state == "done" else 1), res.stderr

    results = tool_results(ws.repo, "evil")
    for (call, expected), result in zip(attempts, results, strict=False):
        assert result["name"] == call["tool"]
        if expected == REFUSED:
            assert result["is_error"], (call, result["result"])
            assert result["result"].startswith(("refused:", "invalid input")), (call, result["result"])
        elif expected == FAILS:
            assert result["is_error"], (call, result["result"])
    if case.finish:
        assert len(results) == len(calls) and results[-1]["name"] == "finish"
    # nothing read from outside reached the transcript
    log = (run_dirs(ws.repo)[-1] / "logs" / "evil.log").read_text()
    assert "do not touch" not in log and "untracked notes" not in log
    assert not [p for p in tmp_path.rglob("escape*")]
    assert not Path("/tmp/agentwaves-hooked").exists()
    before.assert_unchanged(ws)
    _check_case(name, sandbox, ws, state, results, log)


def _check_case(
    name: str, sandbox: str, ws: Workspace, state: dict[str, Any], results: list[dict[str, Any]], log: str
) -> None:
    """What each case must show beyond 'refused and nothing changed'."""
    tasks = tasks_of(state)
    if tasks["evil"]["state"] == "done":  # the group branch holds only agentwaves' own commit
        assert group_commits(ws.repo, state, "evil") == ["task evil: Evil"]
    if name == "symlink_via_run":
        mode = git(ws.repo, "ls-tree", state["branch"], "out").split()[0]
        assert mode == "120000"  # committed as a symlink (visible in review), never followed
        assert git(ws.repo, "show", f"{state['branch']}:hard") == "replaced, not written through"
    elif name == "dot_git":
        assert results[7]["result"].startswith("exit code: 0")  # `git status` works inside
        assert "Read-only file system" in results[8]["result"]
    elif name == "huge_output":
        assert results[0]["result"].startswith("killed: the command printed too much output")
        assert len(log) < 200_000  # the transcript keeps the first 30 000 characters only
    elif name == "endless_loop":
        assert "turn limit reached (5 model calls)" in tasks["evil"]["error"]
        assert len(results) == 5
    elif name == "never_ends":
        assert results[0]["result"].startswith("timed out after 1s")
    elif name == "fork_bomb":
        assert results[0]["result"].startswith("timed out after 3s")
        if pids_cgroup_base() is not None or os.getuid() != 0:  # the process limit can apply
            assert "fork" in results[0]["result"]  # bash could not start more processes
        assert leftover_bomb_processes() == []
    elif name == "git_commit_push":
        assert git(ws.repo, "ls-remote", str(ws.remote)).split() == [git(ws.repo, "rev-parse", "main"),
                                                                     "refs/heads/main"]  # fmt: skip
        assert git(ws.repo, "show", f"{state['branch']}:evil.py") == "EVIL = 1"
