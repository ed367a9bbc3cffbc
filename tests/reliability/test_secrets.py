"""Secrets: canary keys in the environment of a whole session (plan, execute, review, status, report, logs)
appear nowhere agentwaves writes, in no git object, and not in the environment of agents' commands."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import git, latest_state
from tests.reliability.support import Fingerprint, agentwaves, agentwaves_forked, make_workspace, tasks_of

SANDBOXES = [
    pytest.param("bwrap", marks=pytest.mark.skipif(shutil.which("bwrap") is None, reason="no bubblewrap")),
    "none",
]


@pytest.mark.slow
@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_canary_secrets_appear_nowhere(sandbox: str, make_repo: Callable[..., Path], tmp_path: Path) -> None:
    key, token = f"sk-ant-canary-{uuid.uuid4()}", f"canary2-{uuid.uuid4()}"
    canaries = [key, token]
    env = {"ANTHROPIC_API_KEY": key, "MY_SERVICE_TOKEN": token}
    ws = make_workspace(make_repo, tmp_path)
    attempts = [
        "env > env.txt",
        'echo "key=$ANTHROPIC_API_KEY token=$MY_SERVICE_TOKEN" > leak.txt',
        "env",  # into the tool result, the transcript and the handoff's context
        "cat ~/.bash_history ~/.netrc 2>/dev/null; true",
    ]
    if sandbox == "bwrap":  # without a sandbox this one can read agentwaves' own environment (documented)
        attempts.append("cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' > procenv.txt; true")
    calls = [{"tool": "run", "input": {"command": c}} for c in attempts]
    calls.append({"tool": "finish", "input": {"summary": "dumped the environment", "notes": "see env.txt"}})
    script = ws.script(
        {
            "plan": {
                "feature": "environment report",
                "tasks": [
                    {"id": "leak", "title": "Dump the environment", "files": ["env.txt", "leak.txt"]},
                    {"id": "other", "title": "Other", "files": ["other.py"]},
                    {"id": "check", "title": "Gate", "kind": "gate", "depends_on": ["leak", "other"],
                     "command": 'env; echo "token=$MY_SERVICE_TOKEN key=$ANTHROPIC_API_KEY"'},
                ],
            },
            "tasks": {"leak": calls},
        }
    )  # fmt: skip
    record = tmp_path / "record.jsonl"
    before = Fingerprint.take(ws)
    fake = ("--llm", "fake", "--fake-script", script)
    outputs = []
    steps = [
        ("plan", "environment report", "--repo", ws.repo, *fake),
        ("execute", "--repo", ws.repo, *fake, "--sandbox", sandbox, "--record", record),
        ("status", "--json", "--repo", ws.repo),
        ("status", "--repo", ws.repo),
        ("review", "--json", "--diff", "--repo", ws.repo),
        ("review", "--diff", "--repo", ws.repo),
        ("report", "--repo", ws.repo),
        ("runs", "--json", "--repo", ws.repo),
    ]
    for args in steps:
        # only `execute` runs agents' commands, which could read agentwaves' own /proc environ: a real
        # process; the read-only steps from a preloaded fork server (same CLI, same env, no start-up)
        res = (agentwaves if args[0] == "execute" else agentwaves_forked)(*args, env=env)
        assert res.returncode == 0, (args, res.stderr)
        outputs += [res.stdout, res.stderr]
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    for task in ("leak", "check"):
        res = agentwaves_forked("logs", state["run_id"], task, "--repo", ws.repo, env=env)
        assert res.returncode == 0, res.stderr
        outputs += [res.stdout, res.stderr]

    # the agent ran its commands, and they saw an environment without the secrets
    branch = state["branch"]
    env_txt = git(ws.repo, "show", f"{branch}:env.txt")
    assert "AGENTWAVES_PORT=" in env_txt and "PATH=" in env_txt
    assert "ANTHROPIC_API_KEY" not in env_txt and "MY_SERVICE_TOKEN" not in env_txt
    assert git(ws.repo, "show", f"{branch}:leak.txt") == "key= token="
    assert tasks_of(state)["check"]["state"] == "done"

    # nowhere: command output, anything under .agentwaves/, the recording, any git object, git log -p
    haystacks: dict[str, bytes] = {f"output {i}": o.encode() for i, o in enumerate(outputs)}
    for path in (ws.repo / ".agentwaves").rglob("*"):
        if path.is_file() and not path.is_symlink():
            haystacks[str(path)] = path.read_bytes()
    haystacks["record"] = record.read_bytes()
    all_objects = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=ws.repo, capture_output=True, check=True
    ).stdout
    haystacks["git objects"] = all_objects
    haystacks["git log -p --all"] = git(ws.repo, "log", "-p", "--all").encode()
    assert len(haystacks) > 10 and len(all_objects) > 1000
    for where, data in haystacks.items():
        for canary in canaries:
            assert canary.encode() not in data, f"a canary secret leaked into {where}"
    before.assert_unchanged(ws)
