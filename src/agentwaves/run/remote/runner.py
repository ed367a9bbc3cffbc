"""This machine's side of the Ray executor: a :class:`~agentwaves.run.groups.GroupRunner` on Ray nodes.

A group is placed on a node that offers its tasks' resources (the least busy one); each of its tasks is a
Ray task pinned to that node, sent a bundle of only the commits the node lacks, and answered with a
bundle of the task's commit, which is verified and put on the group branch here before the task counts
as done. So a finished task's commit is here even if its node dies afterwards; a task whose node dies
is retried on another node (``ray_node_retries``), from the group branch as it is here. Tasks of one
group run one at a time. Ray is imported here only inside functions. See docs/ray.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentwaves.agents.backend import remote_env
from agentwaves.config import Config
from agentwaves.errors import UsageError
from agentwaves.git.ops import git, update_ref
from agentwaves.plan.compute import RayResources
from agentwaves.plan.model import Task
from agentwaves.run.context import RunContext
from agentwaves.run.remote import INSTALL_HINT, ray_available, transport
from agentwaves.run.remote.backends import agent_settings
from agentwaves.run.remote.pump import EventPump
from agentwaves.run.remote.settle import record_result
from agentwaves.run.remote.spec import LLMSpec, SecretEnv, TaskResult, TaskSpec
from agentwaves.run.taskrun import GroupRuntime, dependency_handoffs, mark_started
from agentwaves.sandbox.bwrap import BwrapSandbox, Sandbox


@dataclass
class RayConnection:
    """A connected Ray driver (made before the run exists, so a bad address fails without a run)."""

    address: str | None
    unfit: dict[str, str] = field(default_factory=dict)  # node id -> why it cannot run the agent

    def runner(self, ctx: RunContext, sandbox: Sandbox) -> RayRunner:
        return RayRunner(ctx, sandbox, self.unfit)

    def check_nodes(self, config: Config, backend: str, sandbox: Sandbox) -> list[str]:
        """Which nodes cannot run ``backend`` (a warning each); a one-line UsageError if none can."""
        from agentwaves.run.remote.preflight import unfit_nodes

        self.unfit = unfit_nodes(backend, agent_settings(config, backend), _sandbox_name(sandbox))
        return [f"{why}: it gets no tasks of this run" for why in self.unfit.values()]


def _sandbox_name(sandbox: Sandbox) -> str:
    return "bwrap" if isinstance(sandbox, BwrapSandbox) else "none"


def connect(config: Config) -> RayConnection:
    """Check that Ray is installed and connect to the cluster; a one-line UsageError otherwise."""
    if not ray_available():
        raise UsageError(f"the ray executor needs the ray package: {INSTALL_HINT}")
    if config.copy_files:
        raise UsageError("copy_files is not supported with executor ray: make the files in `setup` instead")
    if config.record:
        raise UsageError("--record is not supported with executor ray: record with --executor local")
    import ray

    address = config.ray_address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        _probe(address)  # ray.init retries an unreachable address for minutes
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if address is None:
            kwargs["include_dashboard"] = False
        try:
            ray.init(address=address, namespace="agentwaves", **kwargs)
        except Exception as exc:  # ConnectionError, ValueError, RuntimeError: all say the same to a user
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(
                f"cannot connect to the Ray cluster at {address or 'a local Ray'}: {first}"
            ) from None
    return RayConnection(address)


def _probe(address: str) -> None:
    """A one-line UsageError, within seconds, when nothing listens at ``host:port``."""
    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    if address in ("auto", "local") or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot connect to the Ray cluster at {address}: {why}") from None


class RayRunner:
    def __init__(self, ctx: RunContext, sandbox: Sandbox, unfit: dict[str, str] | None = None) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from agentwaves.run.remote import worker
        from agentwaves.run.remote.channel import RunChannel

        self.ctx = ctx
        self.backend = ctx.backend.name  # the node makes the same backend (run/remote/backends.py)
        self.agent = agent_settings(ctx.config, self.backend)
        self.sandbox = _sandbox_name(sandbox)
        self.repo_key = git(ctx.repo, "rev-list", "--max-parents=0", "-n", "1", ctx.store.state.base)
        here = ray.get_runtime_context().get_node_id()
        self._pin = NodeAffinitySchedulingStrategy
        self.channel: Any = (
            ray.remote(RunChannel)
            .options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True))
            .remote()
        )
        self._run = ray.remote(worker.run_on_node)
        self._haves = ray.remote(worker.haves_on_node)
        self._release = ray.remote(worker.release_on_node)
        self.pump = EventPump(ctx, self.channel).start()
        self.lock = threading.Lock()
        self.branches: dict[str, str] = {}
        self.group_locks: dict[str, threading.Lock] = {}
        self.placement: dict[str, str] = {}  # group -> node id
        self.node_has: dict[str, set[str]] = {}  # node id -> commits it is known to have
        self.unfit: dict[str, str] = dict(unfit or {})  # node id -> why it cannot run this run's agent
        self.dead: set[str] = set()  # nodes a task of this run was lost on: no more tasks there
        for node, why in self.unfit.items():  # found before the run: no task goes there
            ctx.events.emit("node_unfit", task=None, group=None, node=self._label(node), error=why)
        self.secrets = SecretEnv({n: os.environ[n] for n in remote_env(ctx.config) if os.environ.get(n)})
        self.llm = _llm_spec(ctx.config)

    # ------------------------------------------------------------------------------------ GroupRunner
    def open(self, group: str, branch: str, start: str, port: int) -> GroupRuntime:
        """The group branch here, at ``start``; the worktree is made on a node when a task runs."""
        current = git(self.ctx.repo, "rev-parse", "-q", "--verify", f"refs/heads/{branch}", check=False)
        if current != start:  # as a local worktree's `-B`: the branch starts where the group starts
            update_ref(self.ctx.repo, branch, start, current or None)
        with self.lock:
            self.branches[group] = branch
            self.group_locks.setdefault(group, threading.Lock())
        return GroupRuntime(group, Path(f"ray:{group}"), port, threading.Lock(), head=start)

    def release(self, rt: GroupRuntime) -> None:
        with self.lock:
            node = self.placement.pop(rt.name, None)
        if node is not None:
            with contextlib.suppress(Exception):  # best effort: the node may be gone
                self._release.options(num_cpus=0, scheduling_strategy=self._pin(node, soft=False)).remote(
                    self.ctx.run_id, rt.name, self.repo_key
                )

    def close(self) -> None:
        import ray

        self.pump.close()
        with contextlib.suppress(Exception):
            ray.kill(self.channel)

    def run(self, task: Task, rt: GroupRuntime, wave_notes: str, agent_done: Callable[[], None]) -> None:
        with self.group_locks[rt.name]:
            ts = mark_started(self.ctx, task.id)
            self.ctx.events.emit("task_started", task=task.id, group=rt.name, attempt=ts.attempts)
            result = self._attempt(task, rt, ts.attempts, wave_notes)
            agent_done()  # the node's agent and commit are done: what is left here is bookkeeping
            self.pump.drain()  # its last events (usage, transcript) before its outcome
            streamed = self.pump.streamed.pop(result.stream, 0)
            record_result(self.ctx, task, rt, self.branches[rt.name], result, streamed)
            if result.status == "done" and result.commit:
                with self.lock:
                    self.node_has.setdefault(self.placement.get(rt.name, ""), set()).add(result.commit)

    # ------------------------------------------------------------------------------------ one task
    def _attempt(self, task: Task, rt: GroupRuntime, attempt: int, wave_notes: str) -> TaskResult:
        from ray.exceptions import RayError, RayTaskError

        res = (task.ray or RayResources()).over(self.ctx.config.ray_resources)
        spec = self._spec(task, rt, attempt, wave_notes)
        lost: list[str] = []
        full = False
        while True:
            node = self._place(rt.name, res.needs(), lost)
            if node is None:
                return TaskResult("failed", "", error=self._no_node(res.needs(), lost))
            label = self._label(node)
            with self.ctx.store.lock:
                self.ctx.store.state.task(task.id).node = label
                self.ctx.store.save()
            bundle = self._bundle(node, rt, full)
            options = {
                **res.ray_options(),
                "max_retries": 0,
                "scheduling_strategy": self._pin(node, soft=False),
            }
            try:
                import ray

                ref = self._run.options(**options).remote(spec, bundle, self.secrets, self.channel)
                result: TaskResult = ray.get(ref)
            except RayTaskError as exc:  # a bug on the node side, not a lost node
                return TaskResult("failed", label, error=f"node {label}: {str(exc).splitlines()[0]}")
            except RayError as exc:
                lost.append(label)
                self.dead.add(node)  # until Ray notices (seconds), it still lists the node as alive
                self._forget(rt.name, node)
                self.ctx.events.emit(
                    "node_lost", task=task.id, group=rt.name, node=label, error=type(exc).__name__
                )
                if len(lost) > self.ctx.config.ray_node_retries:
                    return TaskResult(
                        "failed", label, error=f"lost its Ray node {len(lost)} times: {', '.join(lost)}"
                    )
                continue
            if result.status == "unfit":  # its CLI or bwrap is missing: every other node may have it
                with self.lock:
                    self.unfit[node] = result.error or f"node {label} cannot run the task"
                self._forget(rt.name, node)
                self.ctx.events.emit(
                    "node_unfit", task=task.id, group=rt.name, node=label, error=self.unfit[node]
                )
                continue
            if result.status == "missing_base" and not full:
                full = True  # the node's cache lost what we thought it had: send everything
                with self.lock:
                    self.node_has[node] = set()
                continue
            return result

    def _spec(self, task: Task, rt: GroupRuntime, attempt: int, wave_notes: str) -> TaskSpec:
        c = self.ctx.config
        return TaskSpec(
            run_id=self.ctx.run_id,
            repo_key=self.repo_key,
            group=rt.name,
            branch=self.branches[rt.name],
            start=rt.head or "",
            port=rt.port,
            task=task.model_dump(),
            attempt=attempt,
            backend=self.backend,
            agent=self.agent,
            llm=self.llm,
            feature=self.ctx.plan.feature,
            repo_map=self.ctx.repo_map,
            handoffs=[h.model_dump() for h in dependency_handoffs(self.ctx, task)],
            wave_notes=wave_notes,
            max_turns=c.max_turns,
            max_task_tokens=c.max_task_tokens,
            run_timeout=c.run_timeout,
            stuck_after=c.stuck_after,
            budget_left_usd=None
            if c.budget_usd is None
            else max(0.0, c.budget_usd - self.ctx.tracker.cost()),
            sandbox=self.sandbox,
            setup=c.setup,
            setup_timeout=c.setup_timeout,
        )

    # ------------------------------------------------------------------------------------ placement
    def _place(self, group: str, needs: dict[str, float], lost: list[str]) -> str | None:
        """The group's node if it is alive and offers ``needs``, else the least busy node that does."""
        import ray

        nodes = {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
        fits = [
            nid
            for nid, n in nodes.items()
            if all(n.get("Resources", {}).get(k, 0.0) >= v for k, v in needs.items())
            and self._label(nid, n) not in lost
            and nid not in self.unfit
            and nid not in self.dead
        ]
        with self.lock:
            current = self.placement.get(group)
            if current in fits:
                return current
            if not fits:
                return None
            load = {nid: 0 for nid in fits}
            for nid in self.placement.values():
                if nid in load:
                    load[nid] += 1
            chosen = min(fits, key=lambda nid: (load[nid], nid))
            self.placement[group] = chosen
            return chosen

    def _no_node(self, needs: dict[str, float], lost: list[str]) -> str:
        """Why no node can take the task: the resources none offers, or each fit node's own reason."""
        import ray

        offer = {
            n["NodeID"]
            for n in ray.nodes()
            if n.get("Alive") and all(n.get("Resources", {}).get(k, 0.0) >= v for k, v in needs.items())
        }
        with self.lock:
            unfit = [why for nid, why in self.unfit.items() if nid in offer]
        if unfit:
            return f"no live Ray node can run the {self.backend} agent: {'; '.join(unfit)}"
        why = f" (lost: {', '.join(lost)})" if lost else ""
        need = ", ".join(f"{k}={v:g}" for k, v in needs.items())
        return f"no live Ray node offers {need}{why}"

    def _forget(self, group: str, node: str) -> None:
        with self.lock:
            if self.placement.get(group) == node:
                del self.placement[group]
            self.node_has.pop(node, None)

    def _label(self, node: str, info: dict[str, Any] | None = None) -> str:
        import ray

        if info is None:
            info = next((n for n in ray.nodes() if n["NodeID"] == node), {})
        host = info.get("NodeManagerHostname") or info.get("NodeManagerAddress") or "?"
        return f"{host}/{node[:12]}"

    # ------------------------------------------------------------------------------------ transport
    def _bundle(self, node: str, rt: GroupRuntime, full: bool) -> bytes | None:
        """The commits ``node`` lacks for the group's start, as a bundle (None: it has them)."""
        import ray

        with self.lock:
            known = self.node_has.get(node)
        if known is None and not full:  # first use of this node in this process: ask its cache
            try:
                strategy = self._pin(node, soft=False)
                tips = ray.get(
                    self._haves.options(num_cpus=0, scheduling_strategy=strategy).remote(self.repo_key)
                )
            except Exception:
                tips = []
            known = set(tips)
            with self.lock:
                self.node_has[node] = known
        haves = [] if full else sorted(known or ())
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "out.bundle"
            if not transport.bundle_out(
                self.ctx.repo, f"refs/heads/{self.branches[rt.name]}", rt.head or "", haves, path
            ):
                return None
            data = path.read_bytes()
        with self.lock:
            self.node_has.setdefault(node, set()).add(rt.head or "")
        return data


def _llm_spec(config: Config) -> LLMSpec:
    script = suffix = None
    if config.fake_script:
        path = Path(config.fake_script)
        script, suffix = path.read_text(encoding="utf-8"), path.suffix or ".yaml"
    return LLMSpec(
        name=config.llm,
        model=config.model,
        fake_script=script,
        fake_suffix=suffix or ".yaml",
        fake_time_scale=config.fake_time_scale,
        cache=config.prompt_cache,
        retry_attempts=config.retry_attempts,
        retry_initial_wait=config.retry_initial_wait,
        retry_after_cap=config.retry_after_cap,
    )
