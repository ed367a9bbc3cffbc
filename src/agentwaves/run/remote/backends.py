"""The agent backend a node runs: the agents layer's own (:func:`agentwaves.agents.backend.make_backend`).

A thin adapter, not a second registry: every agent a local run can use (``builtin``, ``claude-code``,
``codex``, ``acp``) runs on a node through the same factory, with the head's agent settings
(:data:`AGENT_FIELDS` of its :class:`~agentwaves.config.Config`). The one difference is the builtin's
model client, built here from the head's :class:`~agentwaves.run.remote.spec.LLMSpec` and the secrets
passed at call time (a node cannot read the head's fake script, and the key must not go into
``os.environ``). A factory's one-line :class:`~agentwaves.errors.UsageError` (the CLI is not installed or
too old on this node) is returned as the reason the node cannot run the task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentwaves.agents.backend import AgentBackend, BackendSetup, make_backend
from agentwaves.agents.builtin import BuiltinBackend
from agentwaves.config import Config
from agentwaves.errors import UsageError
from agentwaves.llm.retry import OnRetry
from agentwaves.run.remote.llm import node_llm
from agentwaves.run.remote.spec import SecretEnv, TaskSpec

AGENT_FIELDS = frozenset(
    {
        "agent",
        "agent_command",
        "agent_args",
        "model",
        "llm",
        "prompt_cache",
        "stuck_after",
        "retry_attempts",
        "retry_initial_wait",
        "retry_after_cap",
    }
)
"""The head's settings a node's agent backend is made with (none of them holds a secret)."""


def agent_settings(config: Config, backend_name: str) -> dict[str, Any]:
    """What :class:`TaskSpec.agent` carries: the agent's settings, with its canonical name."""
    return {**config.model_dump(include=set(AGENT_FIELDS)), "agent": backend_name}


def node_backend(
    spec: TaskSpec, secrets: SecretEnv, on_retry: OnRetry, scratch: Path
) -> tuple[AgentBackend | None, str | None]:
    """The task's backend on this node, or (None, the one-line reason this node cannot run it)."""
    if spec.backend == "builtin":
        return BuiltinBackend(node_llm(spec.llm, secrets, on_retry, scratch)), None
    try:
        config = Config.model_validate({**spec.agent, "agent": spec.backend})
        return make_backend(BackendSetup(config, on_retry=on_retry)), None
    except UsageError as exc:
        return None, str(exc).splitlines()[0]
