"""Where a group's tasks run: the seam between the scheduler and the place that does the work.

The :class:`~agentwaves.run.executor.Executor` decides what runs when; a :class:`GroupRunner` gives a
group a working copy (:meth:`open`), runs its tasks there (:meth:`run`) and takes the copy back
(:meth:`release`). :class:`LocalRunner` uses worktrees of the repository on this machine; the Ray runner
(:mod:`agentwaves.run.remote.runner`) uses worktrees on Ray nodes and brings the task commits back onto
the group branch here, so merges, wave commits and state stay on this machine either way.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from agentwaves.git.ops import STATE_DIR, git
from agentwaves.git.pool import WorktreePool
from agentwaves.git.stacking import Branch
from agentwaves.plan import Group, Wave
from agentwaves.plan.model import Task
from agentwaves.run.context import RunContext
from agentwaves.run.taskrun import GroupRuntime, run_task
from agentwaves.sandbox.bwrap import Sandbox


class GroupRunner(Protocol):
    def open(self, group: str, branch: str, start: str, port: int) -> GroupRuntime:
        """A working copy of ``branch`` at ``start`` for ``group`` (called without the state lock)."""
        ...

    def run(self, task: Task, rt: GroupRuntime, wave_notes: str, agent_done: Callable[[], None]) -> None:
        """Run ``task`` in ``rt`` and commit its work on the group branch; state says how it went.
        ``agent_done`` is called once its agent has finished, before the commit (its slot is free then)."""
        ...

    def release(self, rt: GroupRuntime) -> None:
        """The group is finished with its working copy."""
        ...

    def close(self) -> None: ...


class LocalRunner:
    """Worktrees on this machine (the default, ``executor: local``)."""

    def __init__(self, ctx: RunContext, pool: WorktreePool, sandbox: Sandbox) -> None:
        self.ctx = ctx
        self.pool = pool
        self.sandbox = sandbox
        self.node = socket.gethostname() or "local"

    def open(self, group: str, branch: str, start: str, port: int) -> GroupRuntime:
        worktree = self.pool.acquire(group, branch, start)
        # a fresh or cleaned worktree has untracked files only from copy_files or setup; without them its
        # files are exactly `start` (ignored files aside, which no task's changes count)
        extras = bool(self.pool.copy_files or self.pool.setup)
        leftovers = setup_leftovers(worktree) if extras else []
        exclude = [STATE_DIR, *leftovers]
        head = None if extras else start
        return GroupRuntime(
            group, worktree, port, threading.Lock(), exclude=exclude, head=head, clean=not extras
        )

    def run(self, task: Task, rt: GroupRuntime, wave_notes: str, agent_done: Callable[[], None]) -> None:
        with self.ctx.store.lock:
            self.ctx.store.state.task(task.id).node = self.node  # saved when the task starts
        run_task(self.ctx, task, rt, self.sandbox, wave_notes, agent_done)

    def release(self, rt: GroupRuntime) -> None:
        self.pool.release(rt.worktree, clean_head=rt.head if rt.clean else None)

    def close(self) -> None:
        pass


def setup_leftovers(worktree: Path) -> list[str]:
    """Untracked, not ignored files in a freshly prepared worktree: copied files (``.env``) and what the
    setup command made. They belong to the environment, not to any task, and are never committed."""
    out = git(worktree, "ls-files", "-z", "--others", "--exclude-standard")
    return sorted(p for p in out.split("\0") if p)


def stack_inputs(
    ctx: RunContext,
    committed: Callable[[int], bool],
    dep_groups: Mapping[str, list[str]],
    group: Group,
    wave: Wave,
) -> tuple[list[Branch], list[Branch]]:
    """Under the lock, for eager's stacked base of ``group``: the finished, uncommitted non-gate groups of
    earlier waves, and those of them ``group`` builds on (transitively, by ``dep_groups``), in wave order."""
    wave_of = {g.name: w.index for w in ctx.analysis.waves for g in w.groups}
    needed: set[str] = set()
    todo = list(dep_groups[group.name])
    while todo:
        name = todo.pop()
        if name in needed or committed(wave_of[name]):
            continue
        needed.add(name)
        todo.extend(dep_groups[name])
    finished: list[Branch] = []
    tasks = ctx.plan.by_id
    for w in ctx.analysis.waves:
        if w.index >= wave.index:
            break
        if committed(w.index):
            continue
        for g in w.groups:
            gs = ctx.store.state.group(g.name)
            if gs.state == "done" and gs.head and gs.base and tasks[g.tasks[0]].kind != "gate":
                finished.append(Branch(g.name, gs.head, gs.base))
    return finished, [b for b in finished if b.group in needed]
