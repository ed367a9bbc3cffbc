"""Gate commands and their verdicts: the baseline on the base, JUnit reports, scratch worktrees.

Every gate command, wherever it runs (the integration worktree, the base, a culprit test), goes through
:func:`execute_gate`, which runs it with :func:`agentwaves.sandbox.confined.run_confined` (the sandbox
and process runner agents' ``run`` uses) and decides pass or fail. With a JUnit report and a baseline
that has one, a failing exit code fails the gate only if some test fails that did not fail on the base.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from agentwaves.config import Config
from agentwaves.git.ops import git
from agentwaves.git.worktrees import add_detached, remove_worktree
from agentwaves.plan.model import Task
from agentwaves.run.feedback.junit import JUnitError, JUnitReport, read_junit
from agentwaves.sandbox.bwrap import Sandbox
from agentwaves.sandbox.confined import run_confined
from agentwaves.state.feedback import GateBaseline

GATE_TIMEOUT = 1800.0
GATE_OUTPUT_CAP = 200_000
TAIL = 4000
_PYTEST = re.compile(r"^\s*(?:\S*/)?(?:python[0-9.]*\s+-m\s+)?pytest(?:\s[^;&|<>`$()]*)?$")


@dataclass
class GateRun:
    command: str
    exit_code: int | None
    timed_out: bool
    output: str
    ok: bool
    junit: JUnitReport | None = None
    junit_error: str | None = None
    new_failures: list[str] = field(default_factory=list)

    def why(self) -> str:
        """Why it failed, in a few words."""
        if self.timed_out:
            return "timed out"
        text = f"exited {self.exit_code}"
        if self.new_failures:
            shown = ", ".join(self.new_failures[:5])
            more = f" (+{len(self.new_failures) - 5} more)" if len(self.new_failures) > 5 else ""
            text += f"; new failing tests: {shown}{more}"
        return text


def junit_report(config: Config, task: Task) -> str | None:
    """The report the gate writes (relative to its worktree): its own, the config's, or for a plain
    pytest command one agentwaves asks for (see :func:`gate_command`)."""
    if task.gate_junit or config.gate_junit:
        return task.gate_junit or config.gate_junit
    if task.command and _PYTEST.match(task.command):
        return f".agentwaves-junit-{task.id}.xml"
    return None


def gate_command(config: Config, task: Task) -> str:
    """The command to run: a plain pytest command with no report set gets ``--junitxml``."""
    command = task.command or "true"
    if not (task.gate_junit or config.gate_junit) and _PYTEST.match(command):
        report = junit_report(config, task)
        command = f"{command} --junitxml={shlex.quote(report or '')}"
    return command


def repair_attempts(config: Config, task: Task) -> int:
    return config.repair_attempts if task.repair_attempts is None else task.repair_attempts


def tail(text: str, limit: int = TAIL) -> str:
    return text if len(text) <= limit else f"[... {len(text) - limit} characters before]\n" + text[-limit:]


def execute_gate(
    config: Config,
    task: Task,
    worktree: Path,
    sandbox: Sandbox,
    baseline: GateBaseline | None,
) -> GateRun:
    """Run ``task``'s command in ``worktree`` (in the sandbox) and judge it against ``baseline``."""
    command = gate_command(config, task)
    report = junit_report(config, task)
    if report:
        _unlink(worktree / report)  # never judge by a report an agent committed or an earlier run left
    result = run_confined(
        command,
        worktree,
        sandbox=sandbox,
        timeout=GATE_TIMEOUT,
        max_output=GATE_OUTPUT_CAP,
        network=config.gate_network,
    )
    output = result.output
    if result.omitted_bytes:
        output += f"\n[... output truncated: {result.omitted_bytes} more bytes not shown]"
    run = GateRun(command, result.exit_code, result.timed_out, output, ok=result.exit_code == 0)
    if report:
        try:
            run.junit = read_junit(worktree / report)
        except JUnitError as exc:
            run.junit_error = str(exc)
        _unlink(worktree / report)
    if not run.ok and run.junit is not None and not result.timed_out:
        known = set(baseline.failing) if baseline is not None and baseline.junit else None
        if known is not None and run.junit.failing:
            run.new_failures = sorted(run.junit.failing - known)
            run.ok = not run.new_failures
        else:
            run.new_failures = sorted(run.junit.failing)
    return run


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_symlink() or path.is_file():
            os.unlink(path)


def baseline_of(run: GateRun) -> GateBaseline:
    return GateBaseline(
        exit=run.exit_code if run.exit_code is not None else -1,
        passed=run.exit_code == 0,
        junit=run.junit is not None,
        failing=sorted(run.junit.failing) if run.junit is not None else [],
        output=tail(run.output, 2000),
    )


@contextlib.contextmanager
def scratch_worktree(repo: Path, path: Path, commit: str) -> Iterator[Path]:
    """A detached worktree of ``commit`` at ``path`` (no setup, like the integration worktree), removed
    after use."""
    if path.exists():
        remove_worktree(repo, path)
    add_detached(repo, path, commit)
    try:
        yield path
    finally:
        remove_worktree(repo, path)


def run_baseline(
    config: Config, gates: list[Task], repo: Path, base: str, scratch: Path, sandbox: Sandbox
) -> tuple[dict[str, GateBaseline], list[str]]:
    """Every gate's command once on ``base``; returns the baseline and a warning per gate that fails."""
    out: dict[str, GateBaseline] = {}
    warnings: list[str] = []
    if not gates:
        return out, warnings
    with scratch_worktree(repo, scratch, base) as tree:
        for task in gates:
            git(tree, "clean", "-ffdq")
            run = execute_gate(config, task, tree, sandbox, None)
            out[task.id] = b = baseline_of(run)
            if not b.passed:
                detail = f"{len(b.failing)} failing test(s)" if b.junit else f"exit {b.exit}"
                note = "only new failures will fail it" if b.junit else "it will fail unless the run fixes it"
                warnings.append(f"gate {task.id} already fails on the base ({detail}): {note}")
    return out, warnings
