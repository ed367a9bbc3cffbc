"""The ``builtin`` backend: agentwaves' own tool loop (:mod:`agentwaves.agents.loop`) on an :class:`LLM`."""

from __future__ import annotations

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
)
from agentwaves.agents.implementer import implement
from agentwaves.agents.planner import plan_feature
from agentwaves.agents.resolver import resolve
from agentwaves.agents.tools import WorktreeTools
from agentwaves.config import Config
from agentwaves.llm.base import LLM

if TYPE_CHECKING:
    from agentwaves.agents.doctor import Check


class BuiltinBackend:
    """Runs the planner, implementer and resolver loops with ``llm`` and agentwaves' confined tools."""

    name = "builtin"
    wants_repo_map = True  # its prompts carry the repository's map (agents that read the repository do not)

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.model: str = getattr(llm, "model", "") or ""

    def implement(self, request: TaskRequest) -> TaskResult:
        tools = WorktreeTools(
            request.worktree,
            sandbox=request.sandbox,
            env=request.env,
            run_timeout=request.run_timeout,
            write_guard=request.write_guard,
        )
        outcome = implement(
            self.llm,
            request.task,
            tools,
            feature=request.feature,
            repo_map=request.repo_map,
            handoffs=request.handoffs,
            wave_notes=request.wave_notes,
            attempt=request.attempt,
            limits=request.limits,
            hooks=request.events,
            transcript=request.transcript,
            extra_hints=request.hints,
        )
        return TaskResult(
            handoff=outcome.handoff,
            usage=outcome.usage,
            turns=outcome.turns,
            written=sorted(tools.written),
            exact=not tools.ran_command,
            all_files=outcome.all_files,
        )

    def plan(self, request: PlanRequest) -> PlanResult:
        return plan_feature(
            self.llm,
            request.repo,
            request.feature,
            limits=request.limits,
            hooks=request.events,
            transcript=request.transcript,
            lessons=request.lessons,
        )

    def resolve(self, request: ResolveRequest) -> Resolution:
        tools = WorktreeTools(request.worktree, sandbox=request.sandbox, run_timeout=request.run_timeout)
        return resolve(
            self.llm,
            request.worktree,
            request.conflicts,
            group=request.group,
            feature=request.feature,
            tools=tools,
            limits=request.limits,
            hooks=request.events,
            transcript=request.transcript,
            tree=request.tree,
        )


def make(setup: BackendSetup) -> BuiltinBackend:
    from agentwaves.config import retry_policy
    from agentwaves.llm.registry import make_llm

    config = setup.config
    llm = make_llm(
        config.llm,
        model=config.model,
        fake_script=Path(config.fake_script) if config.fake_script else None,
        fake_time_scale=config.fake_time_scale,
        on_retry=setup.on_retry,
        record=Path(config.record) if config.record else None,
        cache=config.prompt_cache,
        retry=retry_policy(config),
    )
    return BuiltinBackend(llm)


def doctor(config: Config) -> Check:
    from agentwaves import __version__
    from agentwaves.agents.doctor import Check, env_auth

    auth = "not needed (--llm fake)" if config.llm == "fake" else env_auth("ANTHROPIC_API_KEY")
    detail = f"llm: {config.llm}" + ("" if auth else "; set ANTHROPIC_API_KEY")
    return Check("builtin", "agent", True, auth is not None, __version__, None, auth, detail)
