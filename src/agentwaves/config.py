"""Settings: defaults, then ``agentwaves.yaml`` at the repository root, then environment, then CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentwaves.errors import UsageError
from agentwaves.llm.retry import RetryPolicy
from agentwaves.plan.compute import RayResources

CONFIG_FILE = "agentwaves.yaml"


class Config(BaseModel):
    """Every setting of a run. Each field can be set in ``agentwaves.yaml``; most have a CLI flag."""

    model_config = ConfigDict(extra="forbid")

    llm: str = Field(default="anthropic", description="LLM backend: anthropic or fake (env AGENTWAVES_LLM).")
    agent: str = Field(
        default="builtin",
        description="The agent that plans, implements and resolves: builtin (agentwaves' own loop on `llm`), "
        "claude-code (the `claude` CLI), codex, acp; see docs/agents.md (env AGENTWAVES_AGENT).",
    )
    agent_command: str | None = Field(
        default=None,
        description="The agent's program (path or name on PATH) instead of its default (`claude`, ...); "
        "for acp the command line that starts the agent.",
    )
    agent_args: list[str] = Field(
        default_factory=list, description="Extra arguments added to every agent invocation."
    )
    model: str | None = Field(
        default=None, description="Model name, passed on to the agent; the agent's default if unset."
    )
    max_agents: int = Field(default=4, ge=1, le=64, description="At most this many tasks run at once.")
    schedule: Literal["waves", "sequential", "eager"] = Field(
        default="waves", description="waves: barrier per wave; sequential: one group at a time; eager: DAG."
    )
    copy_files: list[str] = Field(
        default_factory=list, description="Untracked files copied into each new worktree (e.g. .env)."
    )
    setup: str | None = Field(
        default=None,
        description="Shell command run in each new worktree, in the sandbox (worktree writable, no secrets).",
    )
    setup_network: bool = Field(
        default=True, description="The setup command may use the network (installers need it)."
    )
    setup_writable: list[str] = Field(
        default_factory=list,
        description="Directories outside the worktree setup may write (caches, e.g. ~/.cache/pip).",
    )
    setup_timeout: float = Field(
        default=900.0, gt=0, description="Seconds the setup command may take before its group fails."
    )
    gate_command: str | None = Field(
        default=None, description="A test command the planner adds as a final gate (e.g. 'pytest -q')."
    )
    gate_junit: str | None = Field(
        default=None,
        description="JUnit XML report every gate writes (relative to the worktree); pytest gates get one.",
    )
    repair_attempts: int = Field(
        default=1, ge=0, le=10, description="Times a group that broke a gate is sent back to its agent."
    )
    gate_network: bool = Field(
        default=False, description="Gates may use the network (else they run with none, like agents)."
    )
    sandbox: Literal["auto", "bwrap", "none"] = Field(default="auto", description="Sandbox for `run`.")
    base_port: int = Field(
        default=41000, ge=1024, le=65000, description="AGENTWAVES_PORT of the first group."
    )
    max_turns: int = Field(default=40, ge=1, description="Model calls per task before it is failed.")
    max_task_tokens: int = Field(default=2_000_000, ge=1000, description="Input+output tokens per task.")
    run_timeout: float = Field(default=120.0, gt=0, description="Default timeout of an agent's `run` (s).")
    stuck_after: float = Field(default=300.0, gt=0, description="Flag a task with no progress for this long.")
    budget_usd: float | None = Field(default=None, gt=0, description="Stop cleanly before spending more.")
    fake_script: str | None = Field(default=None, description="Fake backend: script or recording file.")
    fake_time_scale: float = Field(
        default=0.0, ge=0, description="Fake backend: seconds per estimated minute."
    )
    retry_attempts: int = Field(default=6, ge=1, le=50, description="Attempts per model call.")
    retry_initial_wait: float = Field(
        default=1.0, ge=0, description="Seconds before the first retry; doubled for each further one."
    )
    retry_after_cap: float = Field(
        default=60.0, ge=0, description="Longest retry-after honoured (s); a longer one fails the call."
    )
    record: str | None = Field(default=None, description="Record every model response to this JSONL file.")
    live_leases: bool = Field(
        default=True,
        description="Refuse a write to a path another running group leases at the write; false: only at "
        "the task's end (what agents without a write hook get).",
    )
    executor: Literal["local", "ray"] = Field(
        default="local", description="Where groups' tasks run: local worktrees, or Ray nodes (docs/ray.md)."
    )
    ray_address: str | None = Field(
        default=None, description="Ray cluster to connect to (else RAY_ADDRESS, else a local Ray)."
    )
    ray_resources: RayResources | None = Field(
        default=None, description="Ray resources of every task (a task's own `ray:` wins, key by key)."
    )
    ray_node_retries: int = Field(
        default=2, ge=0, le=10, description="Times a task whose Ray node is lost is retried on another."
    )
    prompt_cache: bool = Field(
        default=True,
        description="Ask the API to cache each request's stable prefix (tools, system, conversation so far).",
    )


def retry_policy(config: Config) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=config.retry_attempts,
        initial_wait=config.retry_initial_wait,
        retry_after_cap=config.retry_after_cap,
    )


def load_config(repo: Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read ``agentwaves.yaml`` (if any), apply environment variables, then non-None ``overrides``."""
    data: dict[str, Any] = {}
    path = repo / CONFIG_FILE
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UsageError(f"{path.name}: invalid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"{path.name}: expected a mapping of settings")
        data.update(loaded)
    env = {
        "llm": os.environ.get("AGENTWAVES_LLM"),
        "model": os.environ.get("AGENTWAVES_MODEL"),
        "agent": os.environ.get("AGENTWAVES_AGENT"),
        "fake_time_scale": os.environ.get("AGENTWAVES_FAKE_TIME_SCALE"),
    }
    data.update({k: v for k, v in env.items() if v})
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        raise UsageError(f"invalid setting {loc}: {err['msg']}") from None
