"""The scheduler: starts tasks when they may run, integrates and commits waves in order.

One loop serves the three schedules; they differ only in when a task may start:

- ``waves``: when every earlier wave is committed (a barrier per wave, the seed's design);
- ``sequential``: as ``waves``, and only one group at a time (the seed's "before waves");
- ``eager``: as soon as its own dependencies are done, on a base stacked from the finished groups of the
  uncommitted earlier waves (which hold its dependencies).

Waves are committed by :class:`agentwaves.run.commits.WaveCommitter`; eager's bases come from
:mod:`agentwaves.git.stacking`.

Everywhere: in-group order (``after``) holds, conflicting tasks never overlap (and a later-wave task waits
for an earlier-wave conflicting one), at most ``slots`` tasks run at once, gates wait for every earlier
wave's commit, and waves are committed one at a time, in order.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from agentwaves.errors import AgentwavesError
from agentwaves.git.ops import GitError, git, head_sha
from agentwaves.git.pool import WorktreePool
from agentwaves.git.stacking import StackedBases
from agentwaves.git.worktrees import group_branch, integration_branch
from agentwaves.plan import Group, Wave
from agentwaves.plan.model import Task
from agentwaves.plan.priority import group_deps, start_ranks, waited_on
from agentwaves.run.commits import WaveCommitter
from agentwaves.run.context import Held, RunContext
from agentwaves.run.feedback.culprit import Feedback
from agentwaves.run.feedback.rebuild import prepare_resume
from agentwaves.run.feedback.revise import run_pending_revisions
from agentwaves.run.groups import GroupRunner, LocalRunner, stack_inputs
from agentwaves.run.integrate import WaveNotes
from agentwaves.run.leases.scope import lease_group, release_group, restore_leases
from agentwaves.run.resume.recovery import branch_head, recover_state
from agentwaves.run.taskrun import GroupRuntime, run_gate
from agentwaves.run.watchdog import Watchdog
from agentwaves.sandbox.bwrap import Sandbox
from agentwaves.state.crash import crashpoint
from agentwaves.state.store import GroupState, now_iso


class Executor:
    def __init__(
        self,
        ctx: RunContext,
        pool: WorktreePool,
        sandbox: Sandbox,
        integration: Path,
        runner: GroupRunner | None = None,
    ) -> None:
        self.ctx = ctx
        self.pool = pool
        self.runner: GroupRunner = runner or LocalRunner(ctx, pool, sandbox)
        self.sandbox = sandbox
        self.integration = integration
        self.schedule = ctx.config.schedule
        self.tasks: dict[str, Task] = ctx.plan.by_id
        self.groups: dict[str, Group] = {}
        self.group_wave: dict[str, Wave] = {}
        self.task_group: dict[str, Group] = {}
        for wave in ctx.analysis.waves:
            for group in wave.groups:
                self.groups[group.name] = group
                self.group_wave[group.name] = wave
                for tid in group.tasks:
                    self.task_group[tid] = group
        self.rank = start_ranks(ctx.analysis, eager=self.schedule == "eager")
        self.dep_groups = group_deps(ctx.analysis)
        self.waited_on = waited_on(ctx.analysis)
        self.runtimes: dict[str, GroupRuntime] = {}
        self.running: set[str] = set()
        self.committing: set[str] = set()  # tasks whose agent is done, their commit not yet made
        self.opening: set[str] = set()  # groups whose worktree a task thread is preparing
        self.blocked: dict[str, int] = {}  # group -> committed waves when its stacked base conflicted
        self.bases = StackedBases(ctx.repo)
        self.gate_running = False
        self.cond = threading.Condition(ctx.store.lock)
        self.ref = f"refs/heads/{integration_branch(ctx.run_id)}"
        self.commits = WaveCommitter(ctx, self.cond, pool, sandbox, self.ref)
        self.feedback = Feedback(ctx, self.cond, pool, sandbox, self.ref)  # failed gates: culprits, repairs
        self.threads: list[threading.Thread] = []
        self._wave_notes = WaveNotes(ctx, self.cond, self._earlier_committed)

    # ------------------------------------------------------------------------------------------ state
    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.ctx.store.state

    def _task_state(self, tid: str) -> str:
        return self.state.task(tid).state

    def _earlier_committed(self, index: int) -> bool:
        return all(self.commits.committed(w.index) for w in self.ctx.analysis.waves if w.index < index)

    def _group_state(self, name: str) -> GroupState:
        return self.state.group(name)

    def _failed_wave(self) -> int | None:
        failed = [
            self.group_wave[g.name].index for w in self.state.waves for g in w.groups if g.state == "failed"
        ]
        return min(failed) if failed else None

    def head(self) -> str:
        return head_sha(self.ctx.repo, self.ref)

    # ------------------------------------------------------------------------------------------ main
    def run(self) -> None:
        if self.state.started is not None:  # else no task ever ran: nothing to bring in line with git
            self.recover()
        run_pending_revisions(self.ctx, self.pool, self.sandbox)  # `agentwaves revise` comments
        with self.cond:
            self.state.state, self.state.started = "running", self.state.started or now_iso()
            self.ctx.store.save()
        watchdog = Watchdog(self.ctx).start()
        try:
            self._loop()
        finally:
            watchdog.stop()

    def _loop(self) -> None:
        self.commits.pending()  # waves an earlier process left finished but uncommitted
        while True:
            with self.cond:
                started = 0 if self.ctx.stop.is_set() else self._start_ready()
                if self.commits.count() == len(self.state.waves) or self.commits.failure is not None:
                    break
                idle = not self.running and not started and not self.commits.committing
                if idle and (self.ctx.stop.is_set() or not self.commits.next_ready()):
                    break
                if self.ctx.interrupted is not None and time.monotonic() > self.ctx.interrupt_deadline:
                    break  # an agent still waits for a model answer: it is not waited for any longer
                if not idle:
                    self.cond.wait(timeout=0.5)
                    continue
            self.commits.pending()  # a group settled after its thread's commit check
        for t in self.threads:
            if self.ctx.interrupted is None:
                t.join()
            else:
                t.join(timeout=max(0.0, self.ctx.interrupt_deadline - time.monotonic()))
        if self.commits.failure is not None:
            raise self.commits.failure
        self.commits.ready_waves()

    # ------------------------------------------------------------------------------------------ starting
    def _start_ready(self) -> int:
        candidates: list[tuple[tuple[float, int], str, Group, Wave]] = []
        failed_wave = self._failed_wave()
        for wave in self.ctx.analysis.waves:
            if self.commits.committed(wave.index):
                continue
            if failed_wave is not None and wave.index > failed_wave:
                break
            if self.schedule != "eager" and not self._earlier_committed(wave.index):
                break
            for group in wave.groups:
                if self.schedule == "sequential" and not self._sequential_turn(group):
                    continue
                for tid in group.tasks:
                    if self._can_start(tid, group, wave):
                        candidates.append((self.rank[tid], tid, group, wave))
        started = 0
        for _, tid, group, wave in sorted(candidates, key=lambda c: c[0]):
            # a launch can change what may start (a conflicting task now runs): check again
            if self._can_start(tid, group, wave) and self._launch(tid, group, wave):
                started += 1
        return started

    def _sequential_turn(self, group: Group) -> bool:
        for wave in self.ctx.analysis.waves:
            for g in wave.groups:
                if self._group_state(g.name).state != "done":
                    return g.name == group.name
        return False

    def _can_start(self, tid: str, group: Group, wave: Wave) -> bool:
        if tid in self.running or self._task_state(tid) != "pending":
            return False
        busy = group.name in self.opening or not self.committing.isdisjoint(group.tasks)  # worktree in use
        if self._group_state(group.name).state == "failed" or busy:
            return False
        if any(self._task_state(d) != "done" for d in group.after.get(tid, [])):
            return False
        task = self.tasks[tid]
        if any(self._task_state(d) != "done" for d in task.depends_on):
            return False
        if task.kind == "gate":
            return not self.gate_running and self._earlier_committed(wave.index)
        for other in self.ctx.analysis.conflicts_of(tid):
            if other in self.running:
                return False
            if (
                self.group_wave[self.task_group[other].name].index < wave.index
                and self._task_state(other) != "done"
            ):
                return False
        if group.name not in self.runtimes and self.schedule == "eager":
            return self._group_deps_done(group) and self.blocked.get(group.name) != self.commits.count()
        return True

    def _group_deps_done(self, group: Group) -> bool:
        return all(self._group_state(n).state == "done" for n in self.dep_groups[group.name])

    def _launch(self, tid: str, group: Group, wave: Wave) -> bool:
        """Start ``tid``'s thread. A group without a worktree yet is opened by that thread, outside the
        state lock (stacked base, worktree, setup), so other tasks keep starting and finishing meanwhile."""
        task = self.tasks[tid]
        if (held := self.ctx.slots.hold()) is None:
            return False
        rt = None
        if task.kind == "gate":
            self.gate_running = True
            self._mark_running(group, wave)
        elif (rt := self.runtimes.get(group.name)) is not None:
            rt.running += 1
            self._mark_running(group, wave)
        else:
            self.opening.add(group.name)
            lease_group(self.ctx, group, self.commits.committed)
        self.running.add(tid)
        thread = threading.Thread(
            target=self._task_thread, args=(task, group, wave, rt, held), daemon=True, name=f"task-{tid}"
        )
        self.threads.append(thread)
        thread.start()
        return True

    def _mark_running(self, group: Group, wave: Wave) -> None:
        ws = self.state.wave(wave.index)
        if ws.state == "pending":
            ws.state, ws.started = "running", ws.started or now_iso()
        self._group_state(group.name).state = "running"

    def _open_group(self, group: Group, wave: Wave) -> GroupRuntime | None:
        """Prepare ``group``'s worktree (called without the lock).

        None: no base yet, as the groups it builds on do not merge (:mod:`agentwaves.git.stacking`)."""
        with self.cond:
            gs = self._group_state(group.name)
            branch = group_branch(self.ctx.run_id, group.name)
            resumed = bool(gs.base and gs.branch)
            eager = self.schedule == "eager"
            inputs = (
                stack_inputs(self.ctx, self.commits.committed, self.dep_groups, group, wave)
                if eager
                else None
            )
            committed = self.commits.count()
        existing = branch_head(self.ctx, branch) if resumed else None
        base = None
        if existing:
            start = existing
        else:
            # read after the snapshot: a wave committed in between is then merged twice, harmlessly
            head = self.head()
            base = self.bases.base(wave.index, head, *inputs) if inputs else head
            if base is None:
                with self.cond:
                    self.blocked[group.name] = committed  # wait for the next wave commit
                return None
            start = base
        crashpoint("before worktree")
        rt = self.runner.open(group.name, branch, start, gs.port)
        crashpoint("after worktree")
        with self.cond:
            if base is not None:
                gs.base = base
            gs.branch = branch
            rt.running += 1
            self.runtimes[group.name] = rt
            self.opening.discard(group.name)
            self._mark_running(group, wave)  # saved as its task starts, a moment later (mark_started)
            self.ctx.events.emit(
                "group_started", group=group.name, wave=wave.index, base=gs.base, worktree=str(rt.worktree)
            )
            self.cond.notify_all()  # the group's other ready tasks may start now
        return rt

    def _group_failed(self, group: Group, error: str) -> None:
        gs = self._group_state(group.name)
        gs.state, gs.error = "failed", error
        self.ctx.store.save()
        self.ctx.events.emit("group_failed", group=group.name, error=error, logs=[])

    # ------------------------------------------------------------------------------------------ workers
    def _task_thread(self, task: Task, group: Group, wave: Wave, rt: GroupRuntime | None, held: Held) -> None:
        opening = rt is None and task.kind != "gate"
        try:
            if opening:
                try:
                    rt = self._open_group(group, wave)
                except AgentwavesError as exc:  # e.g. the setup command failed: this group fails, not the run
                    with self.cond:
                        self._group_failed(group, f"could not prepare its worktree: {exc}")
                    return
                if rt is None:
                    return  # no base yet: the task stays pending
            if rt is None:
                # wave commits move the branch, not the files: bring the gate's worktree up to them
                git(self.integration, "reset", "-q", "--hard", "HEAD")
                result = run_gate(self.ctx, task, self.integration, self.sandbox)
                if not result.ok:
                    self.feedback.gate_failed(task, wave, result)
            else:
                self.runner.run(task, rt, self._wave_notes(wave), lambda: self._agent_done(task.id, held))
        except BaseException as exc:  # a bug must not leave a task "running" forever
            with self.cond:
                ts = self.state.task(task.id)
                ts.state, ts.error, ts.finished = "failed", f"internal error: {exc!r}", now_iso()
                self.ctx.store.save()
        finally:
            held.release()
            released: GroupRuntime | None = None
            with self.cond:
                self.running.discard(task.id)
                self.committing.discard(task.id)
                if rt is not None:
                    rt.running -= 1
                elif task.kind == "gate":
                    self.gate_running = False
                else:
                    self.opening.discard(group.name)  # it could not be opened
                released = self._settle_group(group)
                release_group(self.ctx, group, keep=group.name in self.runtimes or group.name in self.opening)
                if released is None:
                    self.cond.notify_all()
            if released is not None:  # git processes: not under the lock; then the next group reuses it
                try:
                    self.runner.release(released)
                finally:
                    with self.cond:
                        self.cond.notify_all()
            self.commits.pending()

    def _agent_done(self, tid: str, held: Held) -> None:
        """The task's agent has finished: its slot goes to the next ready task while this one commits, if
        that task can have a worktree: one free, or one more than there are agents (made once, then they
        take turns); not with a ``setup`` command, which each new worktree runs again; nor while a task
        waits for this one (the slot is kept for it, the start order's choice)."""
        room = not self.pool.setup and self.pool.has_room(self.ctx.slots.max + 1)
        with self.cond:
            self.ctx.events.emit("agent_finished", task=tid, group=self.task_group[tid].name)
            room = room and all(self._task_state(t) != "pending" for t in self.waited_on[tid])
            if room and held.release():
                self.committing.add(tid)
                self.cond.notify_all()

    def _settle_group(self, group: Group) -> GroupRuntime | None:
        """Under the lock: the group's state once none of its tasks runs. Returns its runtime, whose
        worktree the caller gives back to the pool (after releasing the lock), if the group is finished
        with it."""
        states = [self._task_state(t) for t in group.tasks]
        gs = self._group_state(group.name)
        if any(t in self.running for t in group.tasks):
            return None
        rt = self.runtimes.get(group.name)
        if all(s == "done" for s in states):
            gs.state, gs.error = "done", None
            if rt is not None:
                gs.head = rt.head or git(rt.worktree, "rev-parse", "HEAD")
        elif any(s == "failed" for s in states):
            failed = [t for t, s in zip(group.tasks, states, strict=True) if s == "failed"]
            gs.state = "failed"
            gs.error = "; ".join(f"{t}: {self.state.task(t).error}" for t in failed)
            if rt is not None:
                gs.head = rt.head or git(rt.worktree, "rev-parse", "HEAD")
            self.ctx.events.emit(
                "group_failed",
                group=group.name,
                error=gs.error,
                logs=[str(self.ctx.log_path(t)) for t in failed],
            )
        elif self.ctx.stop.is_set() and rt is not None:
            gs.state = "pending"
        else:
            return None
        self.ctx.store.save()
        if rt is not None:
            del self.runtimes[group.name]
        if gs.state == "done":
            self.ctx.events.emit("group_done", group=group.name, head=gs.head)
        return rt

    # ------------------------------------------------------------------------------------------ resume
    def recover(self) -> None:
        """Bring state in line with git after a crash (see :mod:`agentwaves.run.resume.recovery`)."""
        prepare_resume(self.ctx, self.ref, self.ctx.store.lock)  # rebuilds: revisions, held-back groups
        recover_state(self.ctx, self.ref)
        restore_leases(self.ctx, self.commits.committed)  # what the killed process's groups leased
        git(self.integration, "reset", "-q", "--hard", "HEAD")


__all__ = ["Executor", "GitError"]
