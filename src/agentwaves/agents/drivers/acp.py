"""The ``acp`` backend: any Agent Client Protocol agent, started by ``agent_command`` (+ ``agent_args``).

Each job starts the agent (e.g. ``gemini --experimental-acp``, ``opencode acp``, ``codex-acp``) in its own
process group inside agentwaves' bubblewrap (:mod:`agentwaves.sandbox.agent`), speaks ACP to it
over stdio with the ``agent-client-protocol`` package (``initialize``, ``session/new`` in the worktree,
a session mode that edits without asking when the agent offers one, ``session/prompt``), and answers its
callbacks through :class:`~agentwaves.agents.drivers.acp_client.AcpClient`: tool calls become ``tool`` events,
permission requests are decided by policy, file reads and writes go through the path gate. The handoff is
the agent's final message. Usage and cost are kept when the agent reports them (the protocol's prompt
usage and ``usage_update`` cost are optional); an agent that reports neither has an unknown cost. No
output for ``stuck_after`` seconds: the process group is killed. See docs/agents.md and the "Per agent"
section of docs/security.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import tempfile
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

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
from agentwaves.agents.drivers.acp_client import AUTH_REQUIRED, AcpClient, env_auth_method
from agentwaves.agents.drivers.call import AgentCall
from agentwaves.agents.drivers.codex import base_url_args, user_codex_home
from agentwaves.agents.drivers.runner import (
    Hang,
    handoff_data,
    last_line,
    plan_data,
    plan_with_retries,
    task_result,
)
from agentwaves.agents.implementer import task_message
from agentwaves.agents.loop import AgentFailed
from agentwaves.agents.resolver import resolution
from agentwaves.config import Config
from agentwaves.errors import UsageError
from agentwaves.llm.base import Usage
from agentwaves.prompts import render
from agentwaves.sandbox.agent import AgentJail, existing
from agentwaves.sandbox.bwrap import resolve_sandbox

if TYPE_CHECKING:
    from agentwaves.agents.doctor import Check

EXAMPLES = "e.g. `gemini --experimental-acp`, `opencode acp` or `codex-acp`"
HANDOFF_ANSWER = (
    'End with your handoff as your final message: one JSON object {"summary": ..., "notes": ...}.'
)
PLAN_ANSWER = "Answer with the whole plan as one JSON object, and nothing else."
WRITE_MODES = ("auto", "acceptEdits", "accept-edits", "code", "default")  # never a "full access" mode
READ_MODES = ("read-only", "plan", "ask")
SHUTDOWN_GRACE = 2.0
UNREPORTED = "unreported"  # the model a usage is counted on when the agent reports none: no price
STDERR_TAIL = 4000


def state_dirs(program: str) -> list[Path]:
    """Where well-known ACP agents keep their own state (made writable for them inside the sandbox)."""
    home = Path.home()
    name = Path(program).name
    if name.startswith("codex"):
        return [user_codex_home()]
    if name.startswith("claude"):
        return [Path(os.environ.get("CLAUDE_CONFIG_DIR") or home / ".claude"), home / ".claude.json"]
    if name.startswith("gemini"):
        return [home / ".gemini"]
    if name.startswith("opencode"):
        return [home / ".local" / "share" / "opencode", home / ".local" / "state" / "opencode"]
    return []


def adapter_args(program: str, env: Mapping[str, str]) -> list[str]:
    """What the Codex adapter (a ``codex*`` program) takes only on its command line: ``OPENAI_BASE_URL``
    as its ``openai_base_url`` setting (it reads no such variable, as ``codex``); no shell snapshots (a
    snapshot in ``~/.codex/shell_snapshots`` is a copy of its environment, the key included); and, with
    no login of its own (no ``auth.json``, no credentials store chosen in its ``config.toml``), an
    ``ephemeral`` credentials store, so a key it is given by ``authenticate`` stays in its memory (the
    default file store writes it to ``~/.codex/auth.json`` where that is writable)."""
    if not Path(program).name.startswith("codex"):
        return []
    args = ["-c", "features.shell_snapshot=false", *base_url_args(env)]  # a snapshot holds the key
    home = user_codex_home(env)
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
        if "cli_auth_credentials_store" in tomllib.loads((home / "config.toml").read_text()):
            return args
    if not (home / "auth.json").exists():
        args += ["-c", 'cli_auth_credentials_store="ephemeral"']
    return args


@dataclass
class Session:
    """What one finished prompt turn left."""

    client: AcpClient
    stop_reason: str
    usage: Usage
    cost_usd: float | None


class Acp:
    name = "acp"

    def __init__(self, argv: list[str], config: Config) -> None:
        self.argv = argv
        self.config = config
        self.model: str = config.model or ""

    # ------------------------------------------------------------------ the three jobs

    def implement(self, request: TaskRequest) -> TaskResult:
        system = render("agent_implementer", feature=request.feature or "(not stated)")
        prompt = f"{system}\n{HANDOFF_ANSWER}\n\n"
        prompt += task_message(request.task, request.handoffs, request.wave_notes)
        done = self._run(AgentCall.task(request, prompt))
        data = handoff_data(done.client.final_message())
        missing = "the ACP agent finished without a final message (the handoff)"
        return task_result(request, data, missing, done.usage, done.client.tools, done.cost_usd)

    def plan(self, request: PlanRequest) -> PlanResult:
        sandbox = request.sandbox or resolve_sandbox(self.config.sandbox)[0]

        def ask(prompt: str) -> tuple[object, Usage, float | None]:
            text = f"{render('agent_planner')}\n{PLAN_ANSWER}\n\n{prompt}"
            done = self._run(AgentCall.planner(request, text, sandbox, self.config.stuck_after))
            return plan_data(done.client.final_message()), done.usage, done.cost_usd

        return plan_with_retries(ask, plan_prompt(request), request.feature)

    def resolve(self, request: ResolveRequest) -> Resolution:
        system = render("agent_resolver", feature=request.feature or "(not stated)")
        prompt = f"{system}\n{HANDOFF_ANSWER}\n\n{conflict_prompt(request.group, request.conflicts)}."

        def attempt() -> tuple[str, Usage, float | None]:
            done = self._run(AgentCall.resolver(request, prompt))
            summary = str(handoff_data(done.client.final_message()).get("summary") or "")
            return summary, done.usage, done.cost_usd

        return resolution(request.worktree, request.conflicts, attempt)

    # ------------------------------------------------------------------ one agent process

    def _run(self, call: AgentCall) -> Session:
        cwd, events, transcript, read_only = call.cwd, call.events, call.transcript, call.read_only
        events.check_budget()
        tmp = Path(tempfile.mkdtemp(prefix="agentwaves-acp-"))
        try:
            state = existing(state_dirs(self.argv[0]))
            jail = AgentJail(call.sandbox, cwd, tmp, state=state, writable=not read_only)
            env = {**os.environ, **call.env, "TMPDIR": str(tmp)}
            command = [*self.argv, *adapter_args(self.argv[0], env)]
            argv = jail.wrap(command)
            transcript.write("acp:argv", command)
            transcript.write("user", call.prompt)
            client = AcpClient(cwd, events, transcript, writable=not read_only)
            done = asyncio.run(self._session(argv, cwd, env, client, call.prompt, call.idle, read_only, tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if done.usage != Usage() or done.cost_usd is not None:
            events.usage(done.usage, done.cost_usd, self.model)
        else:  # nothing reported: its cost is unknown (an unpriced model), not a known $0
            events.usage(Usage(), None, UNREPORTED)
        if done.stop_reason in ("max_tokens", "max_turn_requests"):
            raise AgentFailed(f"the ACP agent stopped at its limit ({done.stop_reason})")
        if done.stop_reason in ("refusal", "cancelled"):
            raise AgentFailed(f"the ACP agent stopped its turn: {done.stop_reason}")
        return done

    async def _session(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        client: AcpClient,
        prompt: str,
        idle: float,
        read_only: bool,
        tmp: Path,
    ) -> Session:
        from acp import PROTOCOL_VERSION, RequestError, text_block
        from acp.core import Client, ClientSideConnection
        from acp.schema import ClientCapabilities, FileSystemCapabilities, Implementation

        errpath = tmp / "agent-stderr"
        with open(errpath, "wb") as errfile:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=errfile,
                start_new_session=True,
                limit=1 << 24,
            )
        assert proc.stdin is not None and proc.stdout is not None
        conn = ClientSideConnection(cast(Client, client), proc.stdin, proc.stdout)  # a partial Client

        async def turn() -> Session:
            fs = FileSystemCapabilities(read_text_file=True, write_text_file=not read_only)
            init = await conn.initialize(
                protocol_version=PROTOCOL_VERSION,
                client_capabilities=ClientCapabilities(fs=fs, terminal=False),
                client_info=Implementation(name="agentwaves", version=_version()),
            )
            if init.protocol_version != PROTOCOL_VERSION:
                raise AgentFailed(
                    f"the ACP agent speaks protocol version {init.protocol_version}, agentwaves "
                    f"{PROTOCOL_VERSION}: upgrade the agent"
                )
            try:
                session = await conn.new_session(cwd=str(cwd.resolve()), mcp_servers=[])
            except RequestError as exc:  # its login is missing: a key in its environment, if it takes one
                method = env_auth_method(init.auth_methods, env) if exc.code == AUTH_REQUIRED else None
                if method is None:
                    raise
                client.transcript.write("acp:authenticate", method)
                await conn.authenticate(method_id=method)
                session = await conn.new_session(cwd=str(cwd.resolve()), mcp_servers=[])
            mode = pick_mode(session.modes, READ_MODES if read_only else WRITE_MODES)
            if mode is not None:
                await conn.set_session_mode(session_id=session.session_id, mode_id=mode)
            model_option = next((o for o in session.config_options or [] if o.id == "model"), None)
            if self.model and model_option is not None:
                await conn.set_config_option(
                    config_id=model_option.id, session_id=session.session_id, value=self.model
                )
            client.last_activity = time.monotonic()
            reply = await conn.prompt(session_id=session.session_id, prompt=[text_block(prompt)])
            return Session(client, str(reply.stop_reason), prompt_usage(reply.usage), client.cost_usd)

        try:
            return await watch(turn(), client, proc, idle)
        except (ConnectionError, EOFError, RuntimeError, OSError) as exc:
            raise AgentFailed(self._died(exc, proc, errpath)) from None
        except Exception as exc:  # the protocol library's RequestError and its peers: one line
            if isinstance(exc, AgentFailed):
                raise
            raise AgentFailed(self._died(exc, proc, errpath)) from None
        finally:
            await shutdown(conn, proc)
            client.finish_pending()

    def _died(self, exc: BaseException, proc: asyncio.subprocess.Process, errpath: Path) -> str:
        with contextlib.suppress(OSError):
            why = last_line(errpath.read_text(errors="replace")[-STDERR_TAIL:])
            if why:
                return f"the ACP agent failed ({' '.join(str(exc).split())[:200]}): {why}"
        code = proc.returncode
        return f"the ACP agent failed ({' '.join(str(exc).split())[:200] or type(exc).__name__}), exit {code}"


async def watch(turn: Any, client: AcpClient, proc: asyncio.subprocess.Process, idle: float) -> Session:
    """Run the turn; kill the agent's process group when it is silent for ``idle`` seconds."""
    task = asyncio.ensure_future(turn)
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.5)
        if done:
            return task.result()
        if proc.returncode is not None and not task.done():
            await asyncio.sleep(0.5)
            if not task.done():
                task.cancel()
                raise AgentFailed(f"the ACP agent exited {proc.returncode} in the middle of its turn")
        if time.monotonic() - client.last_activity > idle:
            kill_group(proc)
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise Hang(f"the ACP agent hung (no output for {idle:g} s): killed with its process group")


def kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def shutdown(conn: Any, proc: asyncio.subprocess.Process) -> None:
    """Close the connection and stdin, give the agent a moment to exit, then kill its whole group."""
    with contextlib.suppress(Exception):
        await conn.close()
    if proc.stdin is not None:
        with contextlib.suppress(Exception):
            proc.stdin.close()
    with contextlib.suppress(asyncio.TimeoutError, ProcessLookupError):
        await asyncio.wait_for(proc.wait(), SHUTDOWN_GRACE)
    kill_group(proc)  # whatever it left in its group goes too
    with contextlib.suppress(asyncio.TimeoutError, ProcessLookupError):
        await asyncio.wait_for(proc.wait(), 10)
    # close the pipes' transport while the loop runs: left to the garbage collector, it tries to close
    # itself on the closed loop ("Exception ignored in BaseSubprocessTransport.__del__")
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.close()


def pick_mode(modes: Any, preferred: tuple[str, ...]) -> str | None:
    """The first of ``preferred`` the agent offers (None: keep its default)."""
    if modes is None:
        return None
    offered = {m.id for m in modes.available_modes or []}
    return next((m for m in preferred if m in offered), None)


def prompt_usage(usage: Any) -> Usage:
    """The prompt response's token usage (an optional part of the protocol), as agentwaves counts it."""
    if usage is None:
        return Usage()
    cached = int(usage.cached_read_tokens or 0)
    return Usage(
        input_tokens=max(0, int(usage.input_tokens) - cached),
        output_tokens=int(usage.output_tokens),
        cache_read_input_tokens=cached,
        cache_creation_input_tokens=int(usage.cached_write_tokens or 0),
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentwaves")
    except PackageNotFoundError:
        return "0"


def agent_argv(config: Config) -> list[str]:
    """``agent_command`` split as a shell would, plus ``agent_args``; a one-line UsageError if unusable."""
    if not (config.agent_command or "").strip():
        raise UsageError(f"--agent acp needs agent_command: the command that starts the agent, {EXAMPLES}")
    try:
        argv = shlex.split(config.agent_command or "") + list(config.agent_args)
    except ValueError as exc:
        raise UsageError(f"agent_command {config.agent_command!r} cannot be parsed: {exc}") from None
    found = shutil.which(argv[0])
    if found is None:
        raise UsageError(
            f"--agent acp: `{argv[0]}` (agent_command) is not installed or not on PATH: install the agent, "
            f"{EXAMPLES} (npm install -g @zed-industries/codex-acp)"
        )
    return [found, *argv[1:]]


def make(setup: BackendSetup) -> Acp:
    try:
        import acp  # noqa: F401
    except ImportError:
        raise UsageError(
            "--agent acp needs the agent-client-protocol package: "
            "pip install 'agent-client-protocol>=0.12,<0.13'"
        ) from None
    return Acp(agent_argv(setup.config), setup.config)


def doctor(config: Config) -> Check:
    """Is an ACP agent configured (``agent: acp`` and ``agent_command``) and installed? It authenticates
    its own way, which agentwaves does not check."""
    from agentwaves.agents.doctor import Check

    if config.agent != "acp" or not (config.agent_command or "").strip():
        return Check("acp", "agent", False, False, detail=f"set agent: acp and agent_command, {EXAMPLES}")
    try:
        backend = make(BackendSetup(config))
    except UsageError as exc:
        return Check("acp", "agent", False, False, detail=str(exc).removeprefix("--agent acp: "))
    detail = "the agent authenticates its own way (its login or key); not checked"
    return Check("acp", "agent", True, True, None, " ".join(backend.argv), "the agent's own", detail)
