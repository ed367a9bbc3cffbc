"""The agent backend protocol: what the run layer asks of an agent, and what it gets back.

An *agent backend* does three jobs: implement a task in a worktree (:meth:`AgentBackend.implement`),
plan a feature by reading a repository (:meth:`AgentBackend.plan`) and resolve a merge's conflict markers
(:meth:`AgentBackend.resolve`). The run layer builds a request, calls the backend, and does everything
else itself: worktrees, commits (files written come from git), handoff files, state, merges, retries of
the whole task on resume. Backends are chosen by name (``--agent``, ``agent:``, ``AGENTWAVES_AGENT``):

- ``builtin`` (:mod:`agentwaves.agents.builtin`): agentwaves' own tool loop on ``--llm anthropic|fake``;
- ``claude-code`` (:mod:`agentwaves.agents.drivers.claude_code`): the ``claude`` CLI, headless;
- ``codex`` and ``acp``: see ``docs/agents.md``.

How a new driver plugs in
-------------------------
1. Write a module ``agentwaves/agents/<name>.py`` with a class that has the three methods below and the
   attributes ``name`` and ``model``, and a factory ``make(setup: BackendSetup) -> AgentBackend``. The
   factory must check that the agent can start (installed, recent enough) and raise
   :class:`~agentwaves.errors.UsageError` with one line naming the install command otherwise: it runs
   before any run directory or branch exists. It must do no other work.
2. Add ``"<name>": "agentwaves.agents.<name>:make"`` to :data:`DRIVERS`.
3. In ``implement``: start the agent in ``request.worktree`` confined by ``request.sandbox``
   (:class:`agentwaves.sandbox.agent.AgentJail` wraps the whole agent process in bubblewrap and
   writes a script that runs each of its shell commands in a nested one without network;
   :func:`agentwaves.agents.drivers.runner.run_jsonl` runs it in its own process group with an idle
   timeout and hands over each JSON line; :func:`~agentwaves.agents.drivers.runner.find_program` and
   :func:`~agentwaves.agents.drivers.runner.check_version` do step 1's check), build the prompt with
   :func:`agentwaves.agents.implementer.task_message`, and report as it goes through
   ``request.events``: ``tool_call`` for every tool the agent uses (the live display, ``events.jsonl``
   and stuck detection read them), ``usage`` once the agent reports tokens and cost, ``alive`` on any
   other output, ``rate_limited`` when the agent says it is throttled, ``retrying`` for each retried
   API call. Write the
   transcript (redacted) to ``request.transcript``. Return a :class:`TaskResult`
   (:func:`~agentwaves.agents.drivers.runner.task_result` makes it from the agent's handoff); on failure raise
   :class:`~agentwaves.agents.loop.AgentFailed` with one line (the task is then failed and resumable).
   Call ``request.events.check_budget()`` before starting; it raises when the budget is spent.
4. ``plan``: let the agent read ``request.repo`` only and return the plan data; validate it with
   :func:`agentwaves.plan.load.plan_from_data` and ask again with the problem, at most
   ``MAX_SUBMISSIONS`` times (:func:`agentwaves.agents.drivers.runner.plan_with_retries` does this).
5. ``resolve``: let the agent edit the conflicted files in ``request.worktree``; report what still has
   markers: :func:`agentwaves.agents.resolver.resolution` runs the agent's job and does that (a failed
   agent becomes the summary).
6. ``doctor(config) -> agentwaves.agents.doctor.Check`` in the module: installed, version, how it would
   authenticate (``agentwaves doctor`` lists every driver that has one).
7. Tests: real CLIs from the pinned npm cache (``tests/agentcli.py``) against a stub API on 127.0.0.1.
8. Ray nodes make the backend with the same factory; name the environment variables the agent needs from
   this machine there (its API key, base URL) in :func:`remote_env`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agentwaves.agents.loop import Limits, LoopHooks, NoHooks, Transcript
from agentwaves.agents.records import Handoff
from agentwaves.config import Config
from agentwaves.errors import AgentwavesError, UsageError
from agentwaves.llm.base import Usage
from agentwaves.llm.retry import OnRetry
from agentwaves.plan.model import Plan, Task
from agentwaves.sandbox.bwrap import Sandbox


class BudgetReached(AgentwavesError):
    """The run's spending limit is reached; the run stops cleanly and can be resumed."""


DRIVERS: dict[str, str] = {
    "builtin": "agentwaves.agents.builtin:make",
    "claude-code": "agentwaves.agents.drivers.claude_code:make",
    "codex": "agentwaves.agents.drivers.codex:make",
    "acp": "agentwaves.agents.drivers.acp:make",
}
"""Agent name → ``module:factory``; the module is imported only when that agent is chosen."""


class AgentEvents(LoopHooks, Protocol):
    """Where an agent reports progress: the run's events, usage and cost, budget, stuck detection.

    The builtin loop calls the :class:`~agentwaves.agents.loop.LoopHooks` methods; drivers of external
    agents call the four below."""

    def tool_call(self, name: str, args: Mapping[str, Any], error: bool = False) -> None:
        """The agent used a tool (a ``tool`` event: the live display, status and stuck detection)."""
        ...

    def usage(
        self, usage: Usage, cost_usd: float | None = None, model: str = "", failed: bool = False
    ) -> None:
        """Tokens the agent used (and their cost when it reports one, else priced by our table);
        ``failed``: the call or process that used them failed (it does not count towards recovering
        concurrency after a rate limit)."""
        ...

    def alive(self) -> None:
        """Any other sign of progress (keeps stuck detection quiet)."""
        ...

    def rate_limited(self, detail: str = "") -> None:
        """The agent was throttled: lower the run's concurrency."""
        ...

    def retrying(self, kind: str, attempt: int, wait_s: float) -> None:
        """The agent retries a failed API call (``kind``: rate_limit, overloaded, ...): a ``retry`` event."""
        ...

    def check_budget(self) -> None:
        """Raise :class:`BudgetReached` if the run's budget is spent."""
        ...


class NoEvents(NoHooks):
    """An event sink that keeps nothing (the planner outside a run, tests)."""

    def tool_call(self, name: str, args: Mapping[str, Any], error: bool = False) -> None:
        pass

    def usage(
        self, usage: Usage, cost_usd: float | None = None, model: str = "", failed: bool = False
    ) -> None:
        pass

    def alive(self) -> None:
        pass

    def rate_limited(self, detail: str = "") -> None:
        pass

    def retrying(self, kind: str, attempt: int, wait_s: float) -> None:
        pass

    def check_budget(self) -> None:
        pass


@dataclass
class TaskRequest:
    """Everything one task attempt gets."""

    task: Task
    worktree: Path
    sandbox: Sandbox
    events: AgentEvents
    transcript: Transcript  # the task log; ``transcript.redactor`` redacts secrets
    feature: str = ""
    repo_map: str = ""
    handoffs: list[Handoff] = field(default_factory=list)  # of the tasks this one depends on
    wave_notes: str = ""  # what earlier waves did
    attempt: int = 1
    limits: Limits = field(default_factory=Limits)
    env: dict[str, str] = field(default_factory=dict)  # AGENTWAVES_PORT, AGENTWAVES_TASK for commands
    run_timeout: float = 120.0  # one shell command
    stuck_after: float = 300.0  # no output for this long: a hang
    budget_left_usd: float | None = None
    write_guard: Callable[[str], str | None] | None = None  # live leases: a refusal message, or None
    hints: dict[str, object] = field(default_factory=dict)  # e.g. {"repair": 1}: what the fake scripts key on


@dataclass
class TaskResult:
    """A finished task. ``written`` are the paths the agent is known to have written; ``exact`` says
    they are all its changes (else the run layer scans the worktree with git)."""

    handoff: Handoff
    usage: Usage
    turns: int = 0
    cost_usd: float | None = None  # as the agent reported it; None: priced by our table
    written: list[str] = field(default_factory=list)
    exact: bool = False
    all_files: list[str] | None = None  # every file the task changed (the handoff names the first ones)
    changed: set[str] | None = None  # the worktree's changes as git listed them when the agent ended


@dataclass
class PlanRequest:
    repo: Path
    feature: str
    transcript: Transcript
    lessons: str = ""  # what past runs' predictions missed (history.jsonl), for the planner's prompt
    events: AgentEvents = field(default_factory=NoEvents)
    limits: Limits = field(default_factory=lambda: Limits(max_turns=25))
    sandbox: Sandbox | None = None  # None: the backend's read-only default


@dataclass
class PlanResult:
    plan: Plan
    usage: Usage
    submissions: int
    cost_usd: float | None = None


@dataclass
class ResolveRequest:
    worktree: Path
    conflicts: list[str]
    group: str
    sandbox: Sandbox
    events: AgentEvents
    transcript: Transcript
    feature: str = ""
    limits: Limits = field(default_factory=Limits)
    run_timeout: float = 120.0
    stuck_after: float = 300.0
    tree: str | None = None  # the conflicted tree checked out in ``worktree``: read conflicts from it


@dataclass
class Resolution:
    resolved: bool
    remaining: list[str]
    summary: str
    usage: Usage
    cost_usd: float | None = None


class AgentBackend(Protocol):
    """One agent, as the run layer sees it. ``model`` is the model it runs (may be empty: its default)."""

    name: str
    model: str

    def implement(self, request: TaskRequest) -> TaskResult: ...

    def plan(self, request: PlanRequest) -> PlanResult: ...

    def resolve(self, request: ResolveRequest) -> Resolution: ...


@dataclass
class BackendSetup:
    """What a factory gets: the settings (``agent``, ``agent_command``, ``agent_args``, ``model``, ...)
    and the builtin's retry observer (the run lowers concurrency on rate limits)."""

    config: Config
    on_retry: OnRetry | None = None


def plan_prompt(request: PlanRequest) -> str:
    """The planner's first message: the feature, then what past runs' predictions missed."""
    return f"Plan this feature:\n\n{request.feature}" + (f"\n\n{request.lessons}" if request.lessons else "")


def conflict_prompt(group: str, conflicts: list[str]) -> str:
    """What every resolver is told first: the group whose merge conflicted, and the conflicted files."""
    listing = "\n".join(f"- {p}" for p in conflicts)
    return f"Merging group `{group}` conflicted in these files:\n{listing}\n\nResolve them"


def agent_names() -> list[str]:
    return list(DRIVERS)


ANTHROPIC_ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "CLAUDE_CODE_OAUTH_TOKEN")
OPENAI_ENV = ("OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL")
GEMINI_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


def remote_env(config: Config) -> tuple[str, ...]:
    """The names of this machine's environment variables the agent needs when it runs on another
    machine (a Ray node): its API key and base URL, nothing else. A CLI's own login (``claude`` or
    ``codex login``) is not sent: a node uses its own login, or the key named here."""
    name = config.agent.strip().lower()
    if name == "builtin":
        return ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL") if config.llm == "anthropic" else ()
    if name == "claude-code":
        return ANTHROPIC_ENV
    if name == "codex":
        return OPENAI_ENV
    program = Path((config.agent_command or "").split(" ", 1)[0]).name  # acp: by the agent it starts
    for prefix, names in (("claude", ANTHROPIC_ENV), ("codex", OPENAI_ENV), ("gemini", GEMINI_ENV)):
        if program.startswith(prefix):
            return names
    return ANTHROPIC_ENV + OPENAI_ENV + GEMINI_ENV  # an agent that may use any of them (opencode, ...)


def make_backend(setup: BackendSetup) -> AgentBackend:
    """The backend ``setup.config.agent``; a one-line :class:`UsageError` if unknown or unusable."""
    name = setup.config.agent.strip().lower()
    target = DRIVERS.get(name)
    if target is None:
        raise UsageError(f"unknown agent {setup.config.agent!r}: choose {', '.join(DRIVERS)}")
    module, _, factory = target.partition(":")
    make = getattr(importlib.import_module(module), factory)
    backend: AgentBackend = make(setup)
    return backend
