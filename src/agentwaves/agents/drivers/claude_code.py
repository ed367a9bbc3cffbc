"""The ``claude-code`` backend: Claude Code (the ``claude`` CLI) headless, as planner, implementer, resolver.

Each job is one ``claude -p PROMPT --output-format stream-json --verbose --include-partial-messages
--permission-mode acceptEdits --max-turns N --no-session-persistence --json-schema SCHEMA`` in the
worktree, stdin from ``/dev/null``, the whole process inside agentwaves' bubblewrap
(:mod:`agentwaves.sandbox.agent`) and every shell command it runs in a nested one without network
(``CLAUDE_CODE_SHELL_PREFIX``). The handoff is the structured output; files written come from git.
Failures (exit code, ``is_error``, turn limit, 401, a hang) fail the task with one line; a 429/529 that
Claude Code's own bounded retries could not get past lowers the run's concurrency and runs it again, a
few times. See docs/agents.md and the "Per agent" section of docs/security.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentwaves.agents.backend import (
    BackendSetup,
    BudgetReached,
    PlanRequest,
    PlanResult,
    Resolution,
    ResolveRequest,
    TaskRequest,
    TaskResult,
    conflict_prompt,
    plan_prompt,
)
from agentwaves.agents.drivers.call import AgentCall, Overloaded, rerun_overloaded
from agentwaves.agents.drivers.claude_stream import ClaudeStream
from agentwaves.agents.drivers.runner import (
    AgentProgram,
    Hang,
    check_version,
    find_program,
    last_line,
    plan_with_retries,
    run_jsonl,
    task_result,
)
from agentwaves.agents.drivers.write_hook import WriteHook
from agentwaves.agents.implementer import task_message
from agentwaves.agents.loop import AgentFailed
from agentwaves.agents.resolver import resolution
from agentwaves.config import Config
from agentwaves.llm.base import Usage
from agentwaves.plan.model import Plan
from agentwaves.prompts import render
from agentwaves.sandbox.agent import AgentJail
from agentwaves.sandbox.bwrap import resolve_sandbox

if TYPE_CHECKING:
    from agentwaves.agents.doctor import Check

SPEC = AgentProgram("claude-code", "claude", "@anthropic-ai/claude-code", "2.1.0")
HANDOFF_SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "notes": {"type": "string"}},
    "required": ["summary"],
}
DISALLOWED = ["WebFetch", "WebSearch", "EnterWorktree", "ExitWorktree", "CronCreate", "CronDelete"]
DISALLOWED += ["ScheduleWakeup", "RemoteTrigger"]
READ_ONLY_DENIED = ["Write", "Edit", "NotebookEdit", "Bash"]
SECRET_HOME = (".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".netrc", ".git-credentials")
OVERLOAD = {429, 529}  # after Claude Code's own retries: run again (drivers.call.rerun_overloaded)


class ClaudeCode:
    name = "claude-code"
    write_hook = True  # checks live write leases itself (a PreToolUse hook): see write_hook.py

    def __init__(self, program: str, version: str, config: Config) -> None:
        self.program = program
        self.version = version
        self.config = config
        self.model: str = config.model or ""

    # ------------------------------------------------------------------ the three jobs

    def implement(self, request: TaskRequest) -> TaskResult:
        prompt = task_message(request.task, request.handoffs, request.wave_notes)
        system = render("agent_implementer", feature=request.feature or "(not stated)")
        stream = self._run(AgentCall.task(request, prompt, system))
        answer = stream.answer()
        data = answer if isinstance(answer, dict) else {"summary": str(answer)}
        turns = int((stream.result or {}).get("num_turns") or 0)
        missing = "claude-code finished without a summary"
        return task_result(request, data, missing, stream.usage(), turns, stream.cost())

    def plan(self, request: PlanRequest) -> PlanResult:
        sandbox = request.sandbox or resolve_sandbox(self.config.sandbox)[0]
        schema = Plan.model_json_schema()

        def ask(prompt: str) -> tuple[object, Usage, float | None]:
            call = AgentCall.planner(
                request, prompt, sandbox, self.config.stuck_after, render("agent_planner"), schema
            )
            stream = self._run(call)
            return stream.answer(), stream.usage(), stream.cost()

        return plan_with_retries(ask, plan_prompt(request), request.feature)

    def resolve(self, request: ResolveRequest) -> Resolution:
        prompt = f"{conflict_prompt(request.group, request.conflicts)}."
        system = render("agent_resolver", feature=request.feature or "(not stated)")

        def attempt() -> tuple[str, Usage, float | None]:
            stream = self._run(AgentCall.resolver(request, prompt, system))
            answer = stream.answer()
            summary = str(answer.get("summary") if isinstance(answer, dict) else answer)
            return summary, stream.usage(), stream.cost()

        return resolution(request.worktree, request.conflicts, attempt)

    # ------------------------------------------------------------------ one claude process

    def _run(self, call: AgentCall) -> ClaudeStream:
        """Run claude (again after a 429/529 it could not get past); report usage; raise on failure."""
        return rerun_overloaded(lambda: self._attempt(call), call.events, self.config.retry_initial_wait)

    def _attempt(self, call: AgentCall) -> ClaudeStream:
        """One claude process in a fresh TMPDIR; its usage reported; :class:`Overloaded` or the failure
        its result reports raised."""
        call.events.check_budget()
        cwd, guard = call.cwd, call.guard
        tmp = Path(tempfile.mkdtemp(prefix="agentwaves-claude-"))
        try:
            with WriteHook(cwd, guard) if guard is not None else contextlib.nullcontext() as hook:
                stream = self._once(call, tmp, hook)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        result = stream.result or {}
        if stream.result is not None:
            failed = bool(result.get("is_error"))
            call.events.usage(stream.usage(), stream.cost(), stream.model or self.model, failed=failed)
        failure(stream, call.max_turns)
        return stream

    def _once(self, call: AgentCall, tmp: Path, hook: WriteHook | None = None) -> ClaudeStream:
        cwd, transcript = call.cwd, call.transcript
        home = Path(os.environ.get("HOME") or Path.home())
        config_dir = Path(os.environ.get("CLAUDE_CONFIG_DIR") or home / ".claude")
        state = agent_state(home, config_dir)
        jail = AgentJail(
            call.sandbox,
            cwd,
            tmp,
            state=state,
            secrets=[config_dir / ".credentials.json", home / ".claude.json"],
            writable=not call.read_only,
        )
        env = self._env(tmp, call.idle, call.env)
        if hook is not None:
            env.update(hook.env(env))
        wrapper = jail.shell_wrapper(env)
        if wrapper is not None:
            env["CLAUDE_CODE_SHELL_PREFIX"] = str(wrapper)
        argv = self._argv(call, hook)
        transcript.write("user", call.prompt)
        transcript.write("claude:argv", [a if len(a) < 300 else a[:300] + "…" for a in argv])
        stream = ClaudeStream(call.events, transcript, model=self.model)
        outcome = run_jsonl(
            jail.wrap(argv),
            cwd=cwd,
            env=env,
            on_event=stream,
            on_text=stream.text,
            idle_timeout=call.idle,
            exit_grace=min(30.0, max(5.0, call.idle / 4)),
        )
        if outcome.killed:
            transcript.write("claude:killed", outcome.killed)
            if stream.result is None or not outcome.killed.startswith("it did not exit"):
                raise Hang(f"claude-code hung ({outcome.killed}): killed with its process group")
        elif stream.result is None:
            why = last_line(outcome.stderr) or last_line("\n".join(stream.notes)) or "no result event"
            transcript.write("claude:stderr", outcome.stderr)
            raise AgentFailed(f"claude-code exited {outcome.returncode} without a result: {why}")
        return stream

    def _env(self, tmp: Path, idle: float, extra: dict[str, str]) -> dict[str, str]:
        retries = max(0, min(self.config.retry_attempts - 1, 5))
        return {
            **os.environ,
            **extra,
            "TMPDIR": str(tmp),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_MAX_RETRIES": str(retries),
            "API_TIMEOUT_MS": str(int(max(idle, 10.0) * 1000)),
        }

    def _argv(self, call: AgentCall, hook: WriteHook | None = None) -> list[str]:
        deny = [f"Read(~/{p}/**)" for p in SECRET_HOME] + [f"Edit(~/{p}/**)" for p in SECRET_HOME]
        deny += ["Read(~/.claude/.credentials.json)", "Edit(~/.claude/**)", "Edit(~/.claude.json)"]
        settings: dict[str, Any] = {"permissions": {"deny": deny}, "cleanupPeriodDays": 1}
        if hook is not None:  # live write leases: claude asks agentwaves before each file write
            # command-line settings rank above the worktree's committed .claude/settings*.json: theirs
            # cannot switch hooks off (a scalar: the higher source wins)
            settings["hooks"], settings["disableAllHooks"] = hook.settings(), False
        schema = call.schema or HANDOFF_SCHEMA
        argv = [self.program, "-p", call.prompt, "--output-format", "stream-json", "--verbose"]
        argv += ["--include-partial-messages", "--no-session-persistence", "--max-turns", str(call.max_turns)]
        argv += ["--append-system-prompt", call.system, "--json-schema", json.dumps(schema)]
        argv += ["--settings", json.dumps(settings)]
        if call.read_only:
            argv += ["--permission-mode", "default", "--disallowedTools", *DISALLOWED, *READ_ONLY_DENIED]
        else:
            argv += ["--permission-mode", "acceptEdits", "--allowedTools", "Bash"]
            argv += ["--disallowedTools", *DISALLOWED]
        if self.model:
            argv += ["--model", self.model]
        if call.budget is not None:
            argv += ["--max-budget-usd", f"{max(call.budget, 0.0001):.4f}"]
        return [*argv, *self.config.agent_args]


def failure(stream: ClaudeStream, max_turns: int) -> None:
    """Raise the one-line failure a result reports, if any: :class:`Overloaded` for a 429/529 that Claude
    Code's own retries could not get past."""
    result = stream.result or {}
    subtype = str(result.get("subtype") or "")
    status = result.get("api_error_status")
    text = last_line(str(result.get("result") or "")) or subtype
    if result.get("is_error") and status in OVERLOAD:
        kind = "rate_limit" if status == 429 else "overloaded"
        detail = f"claude-code: HTTP {status} after its own retries"
        raise Overloaded(f"claude-code failed (HTTP {status}): {text}", kind, detail=detail)
    if subtype == "error_max_budget_usd":
        raise BudgetReached(
            "budget reached inside claude-code: resume with a higher --budget-usd to continue"
        )
    if subtype == "error_max_turns":
        raise AgentFailed(f"claude-code reached the turn limit ({max_turns} turns)")
    if not result.get("is_error") and not subtype.startswith("error"):
        return
    if status == 401:
        raise AgentFailed(
            "claude-code could not authenticate (HTTP 401): run `claude` and log in, or set ANTHROPIC_API_KEY"
        )
    raise AgentFailed(f"claude-code failed{f' (HTTP {status})' if status else ''}: {text}")


def agent_state(home: Path, config_dir: Path) -> list[Path]:
    """Claude Code's own state, made writable for it (created if missing so that it can be bound)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    settings = home / ".claude.json"
    if not settings.exists():
        settings.write_text("{}\n")
    return [config_dir, settings]


def make(setup: BackendSetup) -> ClaudeCode:
    program = find_program(SPEC, setup.config.agent_command)
    return ClaudeCode(program, check_version(SPEC, program), setup.config)


def doctor(config: Config) -> Check:
    """Installed? Which version? Can it authenticate: a key in the environment, or its own login."""
    from agentwaves.agents.doctor import cli_check, env_auth, file_auth

    def auth() -> str | None:
        home = Path(os.environ.get("HOME") or Path.home())
        config_dir = Path(os.environ.get("CLAUDE_CONFIG_DIR") or home / ".claude")
        return env_auth(
            "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
            "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX",
        ) or file_auth(config_dir / ".credentials.json")  # fmt: skip

    return cli_check(SPEC, config, auth, "log in with `claude`, or set ANTHROPIC_API_KEY")
