"""The ``codex`` backend: the Codex CLI headless (``codex exec --json``) as planner, implementer, resolver.

Each job is one ``codex exec --json --ephemeral -s workspace-write -C WORKTREE --output-schema FILE
PROMPT`` (``-s read-only`` for the planner), stdin from ``/dev/null``, with its own ``CODEX_HOME`` per
run (the user's ``auth.json`` and ``config.toml`` copied in) beside, never under, its ``TMPDIR``, and the
whole process inside agentwaves' bubblewrap (:mod:`agentwaves.sandbox.agent`) with the user's
``~/.codex`` hidden. Codex runs its shell commands in its own sandbox inside that. The handoff is the
final agent message (JSON ``{summary, notes}`` through ``--output-schema``); files written come from git;
usage is ``turn.completed.usage`` priced with agentwaves' table (the events carry no cost). Failures
(exit code, ``turn.failed``, 401, a hang) fail the task with one line. See docs/agents.md and the
"Per agent" section of docs/security.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from agentwaves.agents.backend import (
    BackendSetup,
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
from agentwaves.agents.drivers.codex_stream import CodexStream
from agentwaves.agents.drivers.runner import (
    AgentProgram,
    Hang,
    check_version,
    find_program,
    handoff_data,
    last_line,
    plan_data,
    plan_with_retries,
    run_jsonl,
    task_result,
)
from agentwaves.agents.implementer import task_message
from agentwaves.agents.loop import AgentFailed
from agentwaves.agents.resolver import resolution
from agentwaves.config import Config
from agentwaves.llm.base import Usage
from agentwaves.prompts import render
from agentwaves.sandbox.agent import AgentJail
from agentwaves.sandbox.bwrap import resolve_sandbox

if TYPE_CHECKING:
    from agentwaves.agents.doctor import Check

SPEC = AgentProgram("codex", "codex", "@openai/codex", "0.171.0")
HANDOFF_SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "notes": {"type": "string"}},
    "required": ["summary", "notes"],
    "additionalProperties": False,
}
COPIED = ("auth.json", "config.toml")  # from the user's CODEX_HOME into the run's
AUTH_HINT = "run `codex login`, or set OPENAI_API_KEY"
# "exceeded retry limit, last status: 429 Too Many Requests", "unexpected status 503 Service Unavailable"
OVERLOAD = re.compile(r"status:? (429|5\d\d)\b")
PLAN_ANSWER = "Answer with the whole plan as one JSON object, and nothing else."


class Codex:
    name = "codex"

    def __init__(self, program: str, version: str, config: Config) -> None:
        self.program = program
        self.version = version
        self.config = config
        self.model: str = config.model or configured_model(user_codex_home())

    # ------------------------------------------------------------------ the three jobs

    def implement(self, request: TaskRequest) -> TaskResult:
        system = render("agent_implementer", feature=request.feature or "(not stated)")
        prompt = f"{system}\n\n{task_message(request.task, request.handoffs, request.wave_notes)}"
        stream = self._run(AgentCall.task(request, prompt))
        data = handoff_data(stream.last_message)
        missing = "codex finished without a final message (the handoff)"
        return task_result(request, data, missing, stream.usage(), 1, None)

    def plan(self, request: PlanRequest) -> PlanResult:
        sandbox = request.sandbox or resolve_sandbox(self.config.sandbox)[0]

        def ask(prompt: str) -> tuple[object, Usage, float | None]:
            text = f"{render('agent_planner')}\n{PLAN_ANSWER}\n\n{prompt}"
            stream = self._run(AgentCall.planner(request, text, sandbox, self.config.stuck_after))
            return plan_data(stream.last_message), stream.usage(), None

        return plan_with_retries(ask, plan_prompt(request), request.feature)

    def resolve(self, request: ResolveRequest) -> Resolution:
        system = render("agent_resolver", feature=request.feature or "(not stated)")
        prompt = f"{system}\n\n{conflict_prompt(request.group, request.conflicts)}."

        def attempt() -> tuple[str, Usage, float | None]:
            stream = self._run(AgentCall.resolver(request, prompt))
            return str(handoff_data(stream.last_message).get("summary") or ""), stream.usage(), None

        return resolution(request.worktree, request.conflicts, attempt)

    # ------------------------------------------------------------------ one codex process

    def _run(self, call: AgentCall) -> CodexStream:
        """Run codex (again after a 429/5xx its own retries did not get past, lowering the run's
        concurrency: :func:`~agentwaves.agents.drivers.call.rerun_overloaded`); report usage; raise
        :class:`AgentFailed` on failure."""
        return rerun_overloaded(lambda: self._once(call), call.events, self.config.retry_initial_wait)

    def _once(self, call: AgentCall) -> CodexStream:
        cwd, events, transcript, idle = call.cwd, call.events, call.transcript, call.idle
        events.check_budget()
        scratch = Path(tempfile.mkdtemp(prefix="agentwaves-codex-"))
        try:
            home, tmp = scratch / "home", scratch / "tmp"  # CODEX_HOME must not be under TMPDIR
            home.mkdir()
            tmp.mkdir()
            copy_codex_home(user_codex_home(), home)
            schema = scratch / "handoff-schema.json"
            schema.write_text(json.dumps(HANDOFF_SCHEMA))
            jail = AgentJail(
                call.sandbox,
                cwd,
                scratch,
                hidden=[user_codex_home()],
                writable=not call.read_only,
            )
            argv = self._argv(call, None if call.read_only else schema)
            transcript.write("codex:argv", [a if len(a) < 300 else a[:300] + "…" for a in argv])
            transcript.write("user", call.prompt)
            stream = CodexStream(events, transcript, cwd=str(cwd))
            outcome = run_jsonl(
                jail.wrap(argv),
                cwd=cwd,
                env=key_env(home, {**os.environ, **call.env, "CODEX_HOME": str(home), "TMPDIR": str(tmp)}),
                on_event=stream,
                on_text=stream.text,
                idle_timeout=idle,
                exit_grace=min(30.0, max(5.0, idle / 4)),
            )
            stream.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if stream.usage_data is not None:
            events.usage(stream.usage(), None, self.model)
        finished = stream.usage_data is not None or stream.failed is not None
        if outcome.killed:
            transcript.write("codex:killed", outcome.killed)
            if not (finished and outcome.killed.startswith("it did not exit")):
                raise Hang(f"codex hung ({outcome.killed}): killed with its process group")
        transcript.write("codex:stderr", outcome.stderr[-2000:])
        # killed only for lingering after its final event: that event decides
        failure(stream, 0 if outcome.killed else outcome.returncode, outcome.stderr)
        return stream

    def _argv(self, call: AgentCall, schema: Path | None) -> list[str]:
        argv = [self.program, "exec", "--json", "--ephemeral", "--color", "never", "--skip-git-repo-check"]
        argv += ["-s", "read-only" if call.read_only else "workspace-write", "-C", str(call.cwd)]
        argv += ["-c", 'approval_policy="never"']
        argv += base_url_args({**os.environ, **call.env})
        if schema is not None:
            argv += ["--output-schema", str(schema)]
        if self.config.model:
            argv += ["-m", self.config.model]
        return [*argv, *self.config.agent_args, "--", call.prompt]


def failure(stream: CodexStream, returncode: int | None, stderr: str) -> None:
    """Raise the one-line failure of a finished run, if it failed."""
    why = stream.failed
    if why is None and stream.usage_data is not None and returncode == 0:
        return
    if why is None:
        why = (
            (stream.errors[-1] if stream.errors else "")
            or last_line(stderr)
            or last_line("\n".join(stream.notes))
            or "no turn.completed event"
        )
    text = " ".join(why.split())[:300]
    if re.search(r"\b401\b", text) or "unauthorized" in text.lower():
        raise AgentFailed(f"codex could not authenticate (HTTP 401): {AUTH_HINT}")
    status = OVERLOAD.search(text)
    if status:
        kind = "rate_limit" if status.group(1) == "429" else "overloaded"
        message = f"codex failed (HTTP {status.group(1)} after its own retries): {text}"
        raise Overloaded(message, kind, stream.rate_limited, detail=f"codex: {message}")
    if stream.failed is None:
        raise AgentFailed(f"codex exited {returncode} without completing its turn: {text}")
    raise AgentFailed(f"codex failed: {text}")


def key_env(home: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` with ``OPENAI_API_KEY`` as ``CODEX_API_KEY`` when codex has no login (no ``auth.json``)
    and no ``CODEX_API_KEY``: codex 0.171's built-in provider reads only its login or ``CODEX_API_KEY``
    (a custom provider reads its own ``env_key``), so the key a Ray node is sent would not be used."""
    if env.get("OPENAI_API_KEY") and not env.get("CODEX_API_KEY") and not (home / "auth.json").exists():
        return {**env, "CODEX_API_KEY": env["OPENAI_API_KEY"]}
    return env


def base_url_args(env: Mapping[str, str]) -> list[str]:
    """``OPENAI_BASE_URL`` as the ``openai_base_url`` setting of codex's built-in provider (codex and its
    ACP adapter read no such variable), or nothing when ``env`` has none."""
    url = env.get("OPENAI_BASE_URL")
    return ["-c", f"openai_base_url={json.dumps(url)}"] if url else []


def user_codex_home(env: Mapping[str, str] = os.environ) -> Path:
    """Where codex keeps its login and settings (``CODEX_HOME``, else ``~/.codex``) for ``env``."""
    return Path(env.get("CODEX_HOME") or Path(env.get("HOME") or Path.home()) / ".codex")


def copy_codex_home(source: Path, target: Path) -> None:
    """The user's login and settings, copied into the run's own CODEX_HOME (owner-only)."""
    for name in COPIED:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
            (target / name).chmod(0o600)


def configured_model(home: Path) -> str:
    """The ``model`` of the user's ``config.toml`` (what codex will run), or ""."""
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
        return str(tomllib.loads((home / "config.toml").read_text()).get("model") or "")
    return ""


def make(setup: BackendSetup) -> Codex:
    program = find_program(SPEC, setup.config.agent_command)
    return Codex(program, check_version(SPEC, program), setup.config)


def doctor(config: Config) -> Check:
    """Installed? Which version? Can it authenticate: a key in the environment, or its own login."""
    from agentwaves.agents.doctor import cli_check, env_auth, file_auth

    def auth() -> str | None:
        return env_auth("OPENAI_API_KEY", "CODEX_API_KEY") or file_auth(user_codex_home() / "auth.json")

    return cli_check(SPEC, config, auth, "log in with `codex login`, or set OPENAI_API_KEY")
