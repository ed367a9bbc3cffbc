"""A run's durable state: ``.agentwaves/runs/<run-id>/state.json``, written atomically at every change.

The file is the source of truth for ``status``, ``review`` and ``resume``. It is replaced atomically
(temp file, fsync, rename, fsync of the directory), so a ``kill -9`` at any moment leaves either the old
or the new version, never a torn one. A per-repository lock (``flock``, released by the kernel when a
process dies) keeps two processes from executing runs of one repository at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentwaves.agents.records import Handoff as Handoff  # re-exported: it lives in agents/
from agentwaves.errors import AgentwavesError, UsageError
from agentwaves.state.crash import crashpoint
from agentwaves.state.feedback import GateBaseline, HistoryEntry, Rebuild, Repair, Revision

Status = Literal["pending", "running", "done", "failed"]
RunStatus = Literal["pending", "running", "done", "failed", "stopped", "interrupted"]
STATE_VERSION = 1


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id() -> str:
    """Sortable, unique and short: ``20261122-014707-3fa2``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


class TaskState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str = ""
    kind: str = "task"
    state: Status = "pending"
    attempts: int = 0
    started: str | None = None
    finished: str | None = None
    commit: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    files_written: list[str] = Field(default_factory=list)
    undeclared: list[str] = Field(default_factory=list)
    undeclared_total: int = 0  # undeclared writes in all; ``undeclared`` lists at most 200
    refused: list[str] = Field(default_factory=list)  # writes refused: leased by another group
    error: str | None = None
    retries: int = 0
    handoff: Handoff | None = None
    stuck_since: str | None = None
    node: str | None = None  # where its last attempt ran: the hostname, or a Ray node (host/node id)
    revisions: list[Revision] = Field(default_factory=list)


class GroupState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    state: Status = "pending"
    branch: str = ""
    base: str | None = None
    head: str | None = None
    port: int = 0
    error: str | None = None
    conflicts: list[str] = Field(default_factory=list)
    resolved: list[str] = Field(default_factory=list)
    resolver_refused: list[str] = Field(default_factory=list)  # resolver changes outside the conflicts
    repairs: list[Repair] = Field(default_factory=list)
    tasks: list[TaskState] = Field(default_factory=list)


class WaveState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    state: Status = "pending"
    base: str | None = None
    commit: str | None = None
    started: str | None = None
    finished: str | None = None
    held: list[str] = Field(default_factory=list)  # groups left out of the commit: they broke a gate
    groups: list[GroupState] = Field(default_factory=list)


class RunSettings(BaseModel):
    """What ``resume`` reuses unless told otherwise."""

    model_config = ConfigDict(extra="forbid")

    llm: str
    agent: str = "builtin"
    agent_command: str | None = None
    agent_args: list[str] = Field(default_factory=list)
    model: str | None = None
    fake_script: str | None = None
    fake_time_scale: float = 0.0
    max_agents: int = 4
    schedule: str = "waves"
    sandbox: str = "auto"
    budget_usd: float | None = None
    executor: str = "local"


class RunState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    run_id: str
    repo: str
    feature: str = ""
    base: str
    branch: str
    state: RunStatus = "pending"
    created: str = Field(default_factory=now_iso)
    started: str | None = None
    finished: str | None = None
    makespan_s: float | None = None
    error: str | None = None
    settings: RunSettings
    estimates: dict[str, float] = Field(default_factory=dict)
    serialization_points: list[dict[str, Any]] = Field(default_factory=list)
    usage: dict[str, Any] = Field(default_factory=dict)
    # calls made outside any task (the resolver, by scope ``resolve:<group>``): kept for resume's totals
    scope_usage: dict[str, dict[str, Any]] = Field(default_factory=dict)
    pid: int | None = None
    planner_model: str | None = None  # noted by `agentwaves plan` in the plan file; None: hand-written
    waves: list[WaveState] = Field(default_factory=list)
    baseline: dict[str, GateBaseline] | None = None  # gate id -> its result on the base
    rebuild: Rebuild | None = None
    history: list[HistoryEntry] = Field(default_factory=list)

    # ------------------------------------------------------------------ lookups
    def wave(self, index: int) -> WaveState:
        for w in self.waves:
            if w.index == index:
                return w
        raise KeyError(index)

    def group(self, name: str) -> GroupState:
        for w in self.waves:
            for g in w.groups:
                if g.name == name:
                    return g
        raise KeyError(name)

    def task(self, task_id: str) -> TaskState:
        for w in self.waves:
            for g in w.groups:
                for t in g.tasks:
                    if t.id == task_id:
                        return t
        raise KeyError(task_id)

    def tasks(self) -> list[TaskState]:
        return [t for w in self.waves for g in w.groups for t in g.tasks]


# ---------------------------------------------------------------------------------------------- storage


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class StateStore:
    """Holds a run's state in memory and persists it on every :meth:`save`. Thread-safe."""

    def __init__(self, run_dir: Path, state: RunState) -> None:
        self.run_dir = run_dir
        self.state = state
        self.lock = threading.RLock()
        # called before each write, e.g. to give every recorded commit a ref (state/pins.py)
        self.before_save: Callable[[RunState], None] | None = None
        self.sealed = False  # set once an interrupted run is recorded: later saves change nothing

    @property
    def path(self) -> Path:
        return self.run_dir / "state.json"

    def save(self) -> None:
        with self.lock:
            if self.sealed:
                return
            crashpoint("before state write")
            if self.before_save is not None:
                with contextlib.suppress(Exception):  # a failed pin must not lose the state itself
                    self.before_save(self.state)
            atomic_write(self.path, self.state.model_dump_json(indent=1))
            crashpoint("after state write")

    @classmethod
    def create(cls, run_dir: Path, state: RunState) -> StateStore:
        run_dir.mkdir(parents=True, exist_ok=True)
        store = cls(run_dir, state)
        store.save()
        return store

    @classmethod
    def load(cls, run_dir: Path) -> StateStore:
        return cls(run_dir, read_state(run_dir))


class StateDamaged(UsageError):
    """A run's ``state.json`` cannot be used (exit 2); the message names the file and what to do."""


def read_state(run_dir: Path) -> RunState:
    """The run's state, or one clear error naming the file (never a traceback; other runs unaffected)."""
    path = run_dir / "state.json"
    fix = f"restore it from a backup, or remove {run_dir} to forget the run (its branches stay in git)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"run {run_dir.name!r} has no state file ({path})") from None
    except (OSError, ValueError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StateDamaged(f"{path} is damaged (not JSON: {why}): {fix}") from None
    if not isinstance(data, dict):
        raise StateDamaged(f"{path} is damaged (a JSON {type(data).__name__}, not an object): {fix}")
    version = data.get("version", STATE_VERSION)
    if version != STATE_VERSION:
        raise StateDamaged(
            f"{path} has state version {version!r}, which this agentwaves does not know (it writes "
            f"version {STATE_VERSION}): use the agentwaves that made the run, or {fix}"
        )
    try:
        return RunState.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ())) or "top level"
        raise StateDamaged(f"{path} is damaged ({where}: {err.get('msg', 'invalid')}): {fix}") from None


def runs_dir(state_dir: Path) -> Path:
    return state_dir / "runs"


def list_runs(state_dir: Path) -> list[str]:
    """Run ids, oldest first (by creation time: two runs of one second sort right too)."""
    root = runs_dir(state_dir)
    if not root.is_dir():
        return []
    runs = []
    for p in root.iterdir():
        state = p / "state.json"
        if state.is_file():
            try:
                data = json.loads(state.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
            created = str(data.get("created", "")) if isinstance(data, dict) else ""
            runs.append((created, p.name))
    return [name for _, name in sorted(runs)]


def resolve_run_dir(state_dir: Path, run_id: str | None) -> Path:
    """The directory of ``run_id``, or of the latest run; a clear error when there is none."""
    runs = list_runs(state_dir)
    if not runs:
        raise UsageError("no runs yet in this repository: start one with `agentwaves execute`")
    if run_id is None:
        return runs_dir(state_dir) / runs[-1]
    matches = [r for r in runs if r == run_id] or [r for r in runs if r.startswith(run_id)]
    if len(matches) == 1:
        return runs_dir(state_dir) / matches[0]
    if not matches:
        raise UsageError(f"unknown run {run_id!r}: `agentwaves runs` lists the runs")
    raise UsageError(f"run id {run_id!r} is ambiguous: {', '.join(matches)}")


# ------------------------------------------------------------------------------------------------ lock


class RepoLock:
    """An exclusive lock on a repository's runs. The kernel releases it when the process dies."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "run.lock"
        self._fd: int | None = None

    def acquire(self, what: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
                holder = f" (pid {info.get('pid')}, run {info.get('run')})"
            os.close(fd)
            raise AgentwavesError(
                f"another agentwaves process is executing in this repository{holder}: "
                "wait for it to finish or stop it, then retry"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "run": what}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def is_held_elsewhere(self) -> bool:
        """True when another live process holds the lock (used by ``clean`` to refuse)."""
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def __enter__(self) -> RepoLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
