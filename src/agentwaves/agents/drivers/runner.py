"""What drivers of external agent CLIs share: finding the program, running it, planning with retries.

:func:`run_jsonl` starts a program in its own process group, stdin from ``/dev/null``, and hands each
JSON line of its stdout to a callback. It kills the whole group when the program prints nothing for
``idle_timeout`` seconds (a hang), when it has not exited ``exit_grace`` seconds after the callback said
the final event arrived, or when the caller stops it. Standard error is kept (its tail) for messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentwaves.agents.backend import PlanResult, TaskRequest, TaskResult
from agentwaves.agents.loop import AgentFailed
from agentwaves.agents.records import bounded_handoff
from agentwaves.errors import UsageError
from agentwaves.git.ops import worktree_changes
from agentwaves.llm.base import Usage
from agentwaves.plan.model import Plan

STDERR_TAIL = 4000


@dataclass(frozen=True)
class AgentProgram:
    """An agent CLI: its name for users, default program, npm package and the oldest version it takes."""

    agent: str
    program: str
    package: str
    min_version: str

    @property
    def install(self) -> str:
        return f"npm install -g {self.package}"


def find_program(spec: AgentProgram, command: str | None) -> str:
    """The program's path (``command`` overrides the default); a one-line :class:`UsageError` if absent."""
    name = command or spec.program
    found = shutil.which(name) if os.sep not in name else (name if os.access(name, os.X_OK) else None)
    if not found:
        raise UsageError(
            f"--agent {spec.agent}: `{name}` is not installed or not on PATH: install it with "
            f"`{spec.install}`, or set agent_command"
        )
    return found


def program_version(path: str, env: Mapping[str, str] | None = None, timeout: float = 30.0) -> str | None:
    """The first ``x.y.z`` that ``path --version`` prints, or None."""
    try:
        done = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\d+\.\d+\.\d+", done.stdout + done.stderr)
    return found.group(0) if found else None


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def check_version(spec: AgentProgram, path: str) -> str:
    """The installed version; :class:`UsageError` (one line, the install command) if too old or unknown."""
    with tempfile.TemporaryDirectory(prefix="agentwaves-version-") as home:
        # a private HOME: asking the version must not create or migrate the user's agent state
        version = program_version(path, {**os.environ, "HOME": home})
    if version is None:
        raise UsageError(
            f"--agent {spec.agent}: `{path} --version` did not answer: reinstall with `{spec.install}`"
        )
    if version_tuple(version) < version_tuple(spec.min_version):
        raise UsageError(
            f"--agent {spec.agent}: {path} is version {version}, older than {spec.min_version}: "
            f"upgrade with `{spec.install}`"
        )
    return version


class Hang(AgentFailed):
    """The agent printed nothing for too long, or did not exit after its final event."""


@dataclass
class RunOutcome:
    returncode: int | None
    stderr: str
    killed: str = ""  # why the process group was killed ("" if it exited by itself)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of ``proc`` (started with ``start_new_session``), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def run_jsonl(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_event: Callable[[dict[str, Any]], bool],
    on_text: Callable[[str], None] | None = None,
    idle_timeout: float,
    exit_grace: float = 30.0,
    should_stop: Callable[[], bool] | None = None,
) -> RunOutcome:
    """Run ``argv``; ``on_event`` gets each JSON object printed on stdout and returns True for the final
    one. Lines that are not JSON go to ``on_text``. Never leaves a process of the group behind."""
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errfile,
            start_new_session=True,
        )
        killed = ""
        try:
            killed = _pump(proc, on_event, on_text, idle_timeout, exit_grace, should_stop)
        finally:
            if killed or proc.poll() is None:
                kill_group(proc)
            else:  # the leader exited: anything it left in its group goes too
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            if proc.stdout:
                proc.stdout.close()
        errfile.seek(0, os.SEEK_END)
        size = errfile.tell()
        errfile.seek(max(0, size - STDERR_TAIL))
        stderr = errfile.read().decode("utf-8", "replace")
    return RunOutcome(proc.returncode, stderr, killed)


def _pump(
    proc: subprocess.Popen[bytes],
    on_event: Callable[[dict[str, Any]], bool],
    on_text: Callable[[str], None] | None,
    idle_timeout: float,
    exit_grace: float,
    should_stop: Callable[[], bool] | None,
) -> str:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    buffer = b""
    last = time.monotonic()
    final_at: float | None = None
    fd = proc.stdout.fileno()
    while True:
        now = time.monotonic()
        if final_at is not None and now - final_at > exit_grace:
            return f"it did not exit {exit_grace:g} s after its final event"
        if final_at is None and now - last > idle_timeout:
            return f"no output for {idle_timeout:g} s"
        if should_stop is not None and should_stop():
            return "stopped"
        if not selector.select(timeout=0.2):
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=exit_grace if final_at is None else max(0.0, exit_grace - (now - final_at)))
            return "" if proc.poll() is not None else "it did not exit after closing its output"
        last = time.monotonic()
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                if on_text:
                    on_text(line)
                continue
            if isinstance(event, dict) and on_event(event) and final_at is None:
                final_at = time.monotonic()


def handoff_data(message: str) -> dict[str, Any]:
    """``{summary, notes}`` from the final message: its JSON object, else the whole text as the summary."""
    text = message.strip()
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        if isinstance(data, dict):
            return data
    return {"summary": text, "notes": ""}


def task_result(
    request: TaskRequest, data: dict[str, Any], missing: str, usage: Usage, turns: int, cost: float | None
) -> TaskResult:
    """A driver's finished task: the handoff from the agent's ``data`` (``summary``, ``notes``), bounded,
    with the files git sees changed in the worktree; :class:`AgentFailed` (``missing``) without a summary."""
    summary = str(data.get("summary") or "").strip()
    if not summary:
        raise AgentFailed(missing)
    notes = str(data.get("notes") or "")
    changed = worktree_changes(request.worktree)
    handoff, files = bounded_handoff(request.task.id, summary, notes, changed)
    return TaskResult(
        handoff, usage, turns, cost, written=files, exact=False, all_files=files, changed=changed
    )


# a CLI's colours and cursor moves (CSI ... final byte) and titles (OSC ... BEL or ST) in its stderr
_TERMINAL_CODES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def last_line(text: str) -> str:
    """The last non-empty line of a CLI's output, without its terminal codes (a task's one-line error;
    anything else that could act on a terminal is made visible where it is shown: ``ui/inert.py``)."""
    lines = [ln.strip() for ln in _TERMINAL_CODES.sub("", text).strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


# ----------------------------------------------------------------------------------- planning


PlanAsk = Callable[[str], tuple[object, Usage, float | None]]
"""Ask the agent once with a prompt; returns its answer (plan data or text), usage and cost."""


def plan_with_retries(ask: PlanAsk, first_prompt: str, feature: str) -> PlanResult:
    """Ask for a plan; send each invalid one back with its problem, as the builtin planner does."""
    from agentwaves.agents.planner import check_submission

    usage, cost, prompt = Usage(), 0.0, first_prompt
    submissions = 0
    while True:
        answer, used, spent = ask(prompt)
        usage, cost = usage + used, cost + (spent or 0.0)
        submissions += 1
        plan: Plan | None
        plan, problem = check_submission(plan_data(answer), feature, submissions)
        if plan is not None:
            return PlanResult(plan=plan, usage=usage, submissions=submissions, cost_usd=cost)
        prompt = (
            f"{first_prompt}\n\nYour previous plan was invalid: {problem}\nFix it and answer with the "
            "whole plan again."
        )


def plan_data(answer: object) -> object:
    """A plan from an agent's answer: structured output as is, else the JSON object in its text."""
    if not isinstance(answer, str):
        return answer
    text = answer.strip()
    fenced = re.search(r"```(?:json|yaml)?\s*\n(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        with contextlib.suppress(ValueError):
            return json.loads(text[start : end + 1])
    return text
