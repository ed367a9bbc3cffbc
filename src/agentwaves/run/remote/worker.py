"""The node side of the Ray executor: one task in a worktree of the node's cache, its commit sent back.

:func:`run_on_node` is what a Ray task runs on a node. It takes the repository from the bundle it is sent
(or from its cache, when it already has the group's start), checks out the group branch in a worktree of
its own scratch directory (never a path of the machine that runs agentwaves), runs the task through the
agents layer's backend for the run's agent (:mod:`.backends`), commits, and returns a bundle of that one
commit. A node that cannot run the agent (its CLI or bubblewrap is missing) says so first, ``unfit``,
before it fetches anything. Scratch directory: ``$AGENTWAVES_RAY_SCRATCH``, else
``<tmp>/agentwaves-ray/<node id>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from agentwaves.agents.backend import AgentBackend, TaskRequest
from agentwaves.agents.loop import AgentFailed, Limits
from agentwaves.errors import AgentwavesError
from agentwaves.git.ops import GitError, git
from agentwaves.llm.base import LLMError
from agentwaves.plan.model import Task
from agentwaves.redact import Redactor
from agentwaves.run.context import BudgetReached
from agentwaves.run.groups import setup_leftovers
from agentwaves.run.remote import transport
from agentwaves.run.remote.backends import node_backend
from agentwaves.run.remote.channel import NodeHooks, NodeTranscript
from agentwaves.run.remote.spec import SecretEnv, TaskResult, TaskSpec
from agentwaves.run.taskrun import TASK_TRAILER, GroupRuntime, commit_task
from agentwaves.sandbox.bwrap import NoSandbox, Sandbox, resolve_sandbox
from agentwaves.state.store import Handoff


def node_identity() -> tuple[str, str]:
    """(this Ray node's id, its label ``host/node-id-prefix`` as recorded in ``tasks[].node``)."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    return node_id, f"{socket.gethostname()}/{node_id[:12]}"


def scratch_dir(node_id: str) -> Path:
    configured = os.environ.get("AGENTWAVES_RAY_SCRATCH")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "agentwaves-ray" / node_id[:12]


def cache_path(scratch: Path, repo_key: str) -> Path:
    return scratch / "cache" / f"{repo_key}.git"


def worktree_path(scratch: Path, repo_key: str, run_id: str, group: str) -> Path:
    return scratch / "worktrees" / repo_key[:12] / run_id / group


def haves_on_node(repo_key: str) -> list[str]:
    """The commits this node's cache has at its newest refs (a Ray task pinned to the node)."""
    node_id, _ = node_identity()
    return transport.node_haves(cache_path(scratch_dir(node_id), repo_key))


def release_on_node(run_id: str, group: str, repo_key: str) -> None:
    """Remove the group's worktree on this node (its commits stay in the cache)."""
    node_id, _ = node_identity()
    scratch = scratch_dir(node_id)
    cache = cache_path(scratch, repo_key)
    shutil.rmtree(worktree_path(scratch, repo_key, run_id, group), ignore_errors=True)
    if (cache / "HEAD").exists():
        with transport.cache_lock(cache):
            git(cache, "worktree", "prune")


def commit_message(run_id: str, task: Task, handoff: Handoff) -> str:
    """As :func:`agentwaves.run.taskrun.task_commit_message` (recovery finds the task by its trailer)."""
    body = handoff.summary.strip()
    return f"task {task.id}: {task.title}\n\n{body}\n\nAgentwaves-Run: {run_id}\n{TASK_TRAILER}: {task.id}\n"


def check_node(spec: TaskSpec, label: str) -> tuple[Sandbox, str | None]:
    """The node's sandbox, or a one-line reason naming the node why it cannot confine the task."""
    if spec.sandbox != "bwrap":
        return NoSandbox(), None
    try:
        return resolve_sandbox("bwrap")[0], None
    except AgentwavesError as exc:
        return NoSandbox(), f"node {label}: {exc}"


def probe_node(backend: str, agent: dict[str, Any], sandbox: str) -> str | None:
    """Why this node cannot run the run's agent (one line naming the node), or None (a Ray task pinned
    to the node, before the run exists; the builtin's model client is not made here)."""
    node_id, label = node_identity()
    spec = TaskSpec("", "", "", "", "", 0, {}, 0, backend=backend, agent=agent, sandbox=sandbox)
    _, problem = check_node(spec, label)
    if problem or backend == "builtin":
        return problem
    _, why = node_backend(spec, SecretEnv({}), lambda *args: None, scratch_dir(node_id))
    return f"node {label}: {why}" if why else None


def run_on_node(spec: TaskSpec, bundle: bytes | None, secrets: SecretEnv, channel: Any) -> TaskResult:
    """Run one task here (on a Ray node); see the module docstring."""
    node_id, label = node_identity()
    t0 = time.monotonic()
    scratch = scratch_dir(node_id)
    task = Task.model_validate(spec.task)
    redactor = Redactor(dict(secrets.items()))
    hooks = NodeHooks(channel, task.id, label, redactor)
    sandbox, problem = check_node(spec, label)
    agent, why = (None, None) if problem else node_backend(spec, secrets, hooks.on_retry, scratch)
    if problem or agent is None:  # before the bundle is fetched: the head places the group elsewhere
        return TaskResult("unfit", label, error=problem or f"node {label}: {why}")
    try:
        worktree = _prepare(spec, bundle, scratch)
    except transport.MissingBase as exc:
        return TaskResult("missing_base", label, error=str(exc))
    except (GitError, AgentwavesError, OSError, subprocess.SubprocessError) as exc:
        return TaskResult("failed", label, error=f"node {label}: could not prepare the worktree: {exc}")
    prepared = time.monotonic() - t0
    result = _run_agent(spec, task, agent, secrets, hooks, label, worktree, sandbox, scratch)
    result.worktree = str(worktree)
    result.timings = {"prepare_s": round(prepared, 3), "total_s": round(time.monotonic() - t0, 3)}
    return result


def _prepare(spec: TaskSpec, bundle: bytes | None, scratch: Path) -> Path:
    """The group's worktree on this node, on ``spec.branch`` at ``spec.start``, clean."""
    cache = cache_path(scratch, spec.repo_key)
    worktree = worktree_path(scratch, spec.repo_key, spec.run_id, spec.group)
    meta = worktree.with_name(f".{spec.group}.leftovers.json")
    ref = f"refs/heads/{spec.branch}"
    with transport.cache_lock(cache):
        transport.open_cache(cache)
        if bundle is not None:
            with tempfile.NamedTemporaryFile(dir=cache, suffix=".bundle") as fh:
                fh.write(bundle)
                fh.flush()
                transport.bundle_in(cache, Path(fh.name), ref)
        if not transport.has_commit(cache, spec.start):
            raise transport.MissingBase(f"the cache lacks {spec.start[:12]}")
        fresh = not (worktree / ".git").exists()
        if fresh:
            shutil.rmtree(worktree, ignore_errors=True)
            git(cache, "worktree", "prune")
            worktree.parent.mkdir(parents=True, exist_ok=True)
            git(cache, "worktree", "add", "-q", "--force", "-B", spec.branch, str(worktree), spec.start)
    if fresh:
        leftovers: list[str] = []
        if spec.setup:
            _setup(spec, worktree)
            leftovers = setup_leftovers(worktree)
        meta.write_text(json.dumps(leftovers))
        return worktree
    leftovers = json.loads(meta.read_text()) if meta.exists() else []
    git(worktree, "checkout", "-q", "--force", "-B", spec.branch, spec.start)
    excludes = [arg for p in leftovers for arg in ("-e", f"/{p}")]
    git(worktree, "clean", "-fdq", *excludes)
    return worktree


def _setup(spec: TaskSpec, worktree: Path) -> None:
    try:
        proc = subprocess.run(
            ["bash", "-c", spec.setup or "true"],
            cwd=worktree,
            capture_output=True,
            timeout=spec.setup_timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise AgentwavesError(f"setup `{spec.setup}` took longer than {spec.setup_timeout:g} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()[-1:]
        raise AgentwavesError(f"setup `{spec.setup}` exited {proc.returncode}: {' '.join(tail)}")


def _run_agent(
    spec: TaskSpec,
    task: Task,
    agent: AgentBackend,
    secrets: SecretEnv,
    hooks: NodeHooks,
    label: str,
    worktree: Path,
    sandbox: Sandbox,
    scratch: Path,
) -> TaskResult:
    log = scratch / "logs" / spec.run_id / f"{task.id}.{spec.attempt}.log"
    log.unlink(missing_ok=True)
    transcript = NodeTranscript(log, hooks)
    transcript.write("attempt", spec.attempt)
    transcript.write("node", label)
    env = {"AGENTWAVES_PORT": str(spec.port), "AGENTWAVES_TASK": task.id}
    if spec.backend != "builtin":  # a CLI agent's process environment (the builtin's key is its client's)
        env.update(secrets.items())
    request = TaskRequest(
        task=task,
        worktree=worktree,
        sandbox=sandbox,
        events=hooks,
        transcript=transcript,
        feature=spec.feature,
        repo_map=spec.repo_map,
        handoffs=[Handoff.model_validate(h) for h in spec.handoffs],
        wave_notes=spec.wave_notes,
        attempt=spec.attempt,
        limits=Limits(spec.max_turns, spec.max_task_tokens),
        env=env,
        run_timeout=spec.run_timeout,
        stuck_after=spec.stuck_after,
        budget_left_usd=spec.budget_left_usd,
    )
    result = TaskResult("failed", label)
    try:
        hooks.check_budget()
        outcome = agent.implement(request)
        handoff = outcome.handoff
        rt = GroupRuntime(spec.group, worktree, spec.port, threading.Lock(), unknown_writes=True)
        sha = commit_task(rt, commit_message(spec.run_id, task, handoff), sorted(outcome.written), True)
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            out = Path(tmp) / "task.bundle"
            transport.bundle_back(worktree, spec.branch, spec.start, out)
            result = TaskResult(
                "done", label, commit=sha, bundle=out.read_bytes(), handoff=handoff.model_dump()
            )
    except BudgetReached as exc:
        result = TaskResult("stopped", label, error=str(exc))
    except (AgentFailed, LLMError, GitError, AgentwavesError, OSError) as exc:
        reason = hooks.redactor.redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        transcript.write("failed", reason)
        result = TaskResult("failed", label, error=reason)
    finally:
        hooks.flush()
    with contextlib.suppress(OSError):
        result.transcript = log.read_text(encoding="utf-8")
    result.stream = transcript.stream
    return result
