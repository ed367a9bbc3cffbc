"""Hostile agents against agentwaves itself: a scripted agent (``--fake-script``) plants code or links that
agentwaves later runs or follows. Real git, real bubblewrap, a canary API key in agentwaves' environment and
a sentinel directory beside the repository that nothing may touch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import (
    Fingerprint,
    Workspace,
    agentwaves_forked,
    make_workspace,
    run_dirs,
    tasks_of,
    tool_results,
    tree_digest,
)

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
TIMEOUT = 180.0


def tool(name: str, **inp: Any) -> dict[str, Any]:
    return {"tool": name, "input": inp}


def run(command: str, timeout: float | None = None) -> dict[str, Any]:
    return tool("run", command=command, **({"timeout": timeout} if timeout is not None else {}))


def finish(summary: str = "done", notes: str | None = None) -> dict[str, Any]:
    return tool("finish", summary=summary, **({"notes": notes} if notes is not None else {}))


@dataclass
class Hostile:
    """A workspace, the canary key agentwaves runs with, and the helpers every security test needs."""

    ws: Workspace
    canary: str
    tmp: Path
    before: Fingerprint | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def repo(self) -> Path:
        return self.ws.repo

    @property
    def sentinel(self) -> Path:
        return self.ws.sentinel

    def plan(self, tasks: list[dict[str, Any]]) -> Path:
        return self.ws.plan(tasks)

    def script(self, data: dict[str, Any]) -> Path:
        return self.ws.script(data)

    def agentwaves(
        self, *args: str | Path, timeout: float = TIMEOUT, forked: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``python -m agentwaves ARGS`` with the canary key; ``forked``: from the preloaded fork server
        (``tests/e2e/forkserver.py``), for read-only steps whose process no agent can look at."""
        env = {**os.environ, "ANTHROPIC_API_KEY": self.canary, **self.env}
        if forked:
            return agentwaves_forked(*args, env=env, timeout=timeout)
        return subprocess.run(
            [sys.executable, "-m", "agentwaves", *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def execute(
        self, tasks: list[dict[str, Any]], script: dict[str, Any], *extra: str, sandbox: str = "bwrap"
    ) -> subprocess.CompletedProcess[str]:
        """``agentwaves execute`` of ``tasks`` scripted by ``script``, after a fingerprint of everything."""
        plan, script_path = self.plan(tasks), self.script(script)
        self.before = self.before or Fingerprint.take(self.ws)
        return self.agentwaves("execute", "--repo", self.repo, "--plan", plan, "--llm", "fake",
                               "--fake-script", script_path, "--sandbox", sandbox, *extra)  # fmt: skip

    def state(self) -> dict[str, Any]:
        import json

        return json.loads((run_dirs(self.repo)[-1] / "state.json").read_text())

    def tasks(self) -> dict[str, dict[str, Any]]:
        return tasks_of(self.state())

    def results(self, task: str) -> list[dict[str, Any]]:
        return tool_results(self.repo, task)

    def leaked(self, *texts: str) -> list[str]:
        """Where the canary (as is, reversed or hex-encoded) shows up: run files, worktrees, given texts."""
        shapes = (self.canary, self.canary[::-1], self.canary.encode().hex())
        found = [f"text {i}" for i, t in enumerate(texts) if any(s in t for s in shapes)]
        for path in (self.repo / ".agentwaves").rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes().decode("utf-8", "replace")
                found += [str(path) for s in shapes if s in data]
        return found

    def assert_contained(self, *texts: str, user_unchanged: bool = True) -> None:
        """The sentinel is untouched, the canary nowhere, and (by default) the user's repository as it was."""
        assert self.before is not None
        assert tree_digest(self.sentinel) == self.before.sentinel, "the sentinel directory changed"
        assert not self.leaked(*texts), f"the canary key leaked: {self.leaked(*texts)}"
        if user_unchanged:
            self.before.assert_unchanged(self.ws)


def hostile(make_repo: Callable[..., Path], tmp_path: Path, **kwargs: Any) -> Hostile:
    ws = make_workspace(make_repo, tmp_path, **kwargs)
    return Hostile(ws, f"sk-ant-canary-{uuid.uuid4().hex}", tmp_path)


def exfiltrate(sentinel: Path, tag: str) -> str:
    """A Python snippet that tries everything a hostile program does once it runs: write the sentinel,
    and print the canary key (reversed, so no redaction hides it) from its environment and from every
    process environment it can read."""
    return f"""
import os, pathlib
try:
    pathlib.Path({str(sentinel)!r}, "pwned-{tag}").write_text("pwned")
    print("WROTE-SENTINEL-{tag}")
except OSError as exc:
    print("no sentinel:", exc)
seen = [os.environ.get("ANTHROPIC_API_KEY", "")]
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            seen.append(open(f"/proc/{{pid}}/environ", "rb").read().decode("utf-8", "replace"))
        except OSError:
            pass
for text in seen:
    for item in text.split("\\0"):
        if item.startswith("ANTHROPIC_API_KEY=") or item.startswith("sk-ant-"):
            print("LOOT", item.split("=", 1)[-1][::-1])
print("EXFIL-RAN-{tag}")
"""
