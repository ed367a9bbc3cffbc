"""`agentwaves doctor`: can this machine run agentwaves, and which agents?

One :class:`Check` per agent driver (each driver module offers ``doctor(config) -> Check``), then
bubblewrap and git. ``ok`` of the whole report is whether the configured agent, git and (unless
``sandbox: none``) bubblewrap are usable. The JSON shape is documented in docs/cli.md.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agentwaves.agents.backend import DRIVERS
from agentwaves.agents.drivers.runner import AgentProgram, check_version, find_program
from agentwaves.config import Config
from agentwaves.errors import UsageError

MIN_GIT = (2, 38)


@dataclass
class Check:
    name: str
    kind: str  # agent, sandbox, tool
    installed: bool
    ok: bool
    version: str | None = None
    path: str | None = None
    auth: str | None = None  # how the agent would authenticate, None if it cannot
    detail: str = ""

    def line(self) -> str:
        state = "ok" if self.ok else ("missing" if not self.installed else "not ready")
        parts = [f"{self.name:<12} {state:<9}", self.version or "-"]
        if self.kind == "agent":
            parts.append(f"auth: {self.auth or 'none'}")
        if self.detail:
            parts.append(self.detail)
        return "  ".join(parts)


def _version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\d+\.\d+(\.\d+)?", done.stdout + done.stderr)
    return found.group(0) if found else None


def git_check() -> Check:
    path = shutil.which("git")
    if path is None:
        return Check("git", kind="tool", installed=False, ok=False, detail="install git >= 2.38")
    version = _version([path, "--version"])
    parts = tuple(int(x) for x in (version or "0.0").split(".")[:2])
    ok = parts >= MIN_GIT
    need = "" if ok else "git >= 2.38 is needed"
    return Check("git", kind="tool", installed=True, ok=ok, version=version, path=path, detail=need)


def bwrap_check() -> Check:
    from agentwaves.sandbox.bwrap import probe_bwrap

    path = shutil.which("bwrap")
    if path is None:
        return Check("bubblewrap", "sandbox", False, False, detail="apt-get install bubblewrap")
    version = _version([path, "--version"])
    if not probe_bwrap(path, False):
        return Check(
            "bubblewrap", "sandbox", True, False, version, path, detail="installed but does not work here"
        )
    userns = probe_bwrap(path, True)
    detail = "with user namespaces" if userns else "without user namespaces"
    return Check("bubblewrap", "sandbox", True, True, version, path, detail=detail)


def agent_checks(config: Config) -> list[Check]:
    checks = []
    for target in DRIVERS.values():
        module = importlib.import_module(target.partition(":")[0])
        probe = getattr(module, "doctor", None)
        if probe is not None:
            checks.append(probe(config))
    return checks


def cli_check(spec: AgentProgram, config: Config, auth: Callable[[], str | None], hint: str) -> Check:
    """An agent CLI's check: installed (``agent_command`` when it is the chosen agent), recent enough,
    and how it would authenticate: ``auth()`` (a key in the environment, its own login), else ``hint``."""
    command = config.agent_command if config.agent == spec.agent else None
    try:
        program = find_program(spec, command)
    except UsageError:
        return Check(spec.agent, "agent", False, False, detail=spec.install)
    try:
        version = check_version(spec, program)
    except UsageError as exc:
        return Check(spec.agent, "agent", True, False, None, program, detail=str(exc).split(": ", 1)[-1])
    how = auth()
    return Check(spec.agent, "agent", True, how is not None, version, program, how, "" if how else hint)


def env_auth(*names: str) -> str | None:
    """The first of ``names`` set in the environment."""
    return next((n for n in names if os.environ.get(n)), None)


def file_auth(*paths: Path) -> str | None:
    """The first of ``paths`` that exists, with ``~`` for the home directory."""
    home = str(Path(os.environ.get("HOME") or Path.home()))
    for path in paths:
        if path.is_file():
            text = str(path)
            return "~" + text[len(home) :] if text.startswith(home + os.sep) else text
    return None


def run_doctor(config: Config) -> dict[str, Any]:
    checks = [*agent_checks(config), bwrap_check(), git_check()]
    by_name = {c.name: c for c in checks}
    needed = [config.agent, "git"] + ([] if config.sandbox == "none" else ["bubblewrap"])
    if config.sandbox == "auto" and not by_name["bubblewrap"].ok:
        needed.remove("bubblewrap")  # auto runs unconfined, with a warning
    ok = all(by_name[n].ok for n in needed if n in by_name)
    return {"ok": ok, "agent": config.agent, "checks": [asdict(c) for c in checks]}


def doctor_lines(report: dict[str, Any]) -> list[str]:
    return [Check(**c).line() for c in report["checks"]]
