"""Commands agentwaves itself runs on agent-written files (gates, ``setup``), confined like ``run``.

They run through :func:`agentwaves.sandbox.proc.run_sandboxed` in the run's sandbox, with the environment of
the shell that started agentwaves minus every secret-looking variable (so an activated venv keeps working;
:func:`agentwaves.sandbox.proc.tool_dirs` keeps it visible, read-only, even under ``/tmp``), a private HOME
for caches (``XDG_CACHE_HOME``) and only the worktree, that HOME and ``writable`` writable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from agentwaves.sandbox.homes import make_home, remove_home
from agentwaves.sandbox.proc import Limits, RunResult, run_sandboxed
from agentwaves.sandbox.bwrap import Sandbox
from agentwaves.redact import is_secret_name

LIMITS = Limits(max_address_space=None)
"""Gates and setup build and test real projects (JVMs, node): processes and file size capped, memory not."""


def shell_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the shell that started agentwaves, plus ``extra``, without secret-looking names."""
    env = {**os.environ, **(extra or {})}
    return {k: v for k, v in env.items() if not is_secret_name(k)}


def run_confined(
    command: str,
    cwd: Path,
    *,
    sandbox: Sandbox,
    timeout: float,
    max_output: int,
    network: bool,
    env: Mapping[str, str] | None = None,
    writable: Sequence[Path] = (),
) -> RunResult:
    """Run ``command`` in ``cwd`` confined (see the module docstring); the private HOME is removed after."""
    home = make_home()
    try:
        full_env = {**shell_env(env), "XDG_CACHE_HOME": str(home / ".cache")}
        return run_sandboxed(
            command,
            cwd,
            sandbox=sandbox,
            env=full_env,
            timeout=timeout,
            max_output=max_output,
            writable=[home, *writable],
            limits=LIMITS,
            network=network,
        )
    finally:
        remove_home(home)
