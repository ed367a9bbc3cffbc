"""Committing finished waves: in order, one at a time, one commit per wave on the integration branch.

Whichever thread settles a wave's last group commits it (:meth:`WaveCommitter.pending`), so the
scheduler keeps starting tasks while a wave is merged. The merge itself is
:func:`agentwaves.run.integrate.integrate_wave`.
"""

from __future__ import annotations

import threading

from agentwaves.git.merge import commit_wave
from agentwaves.git.ops import head_sha
from agentwaves.git.pool import WorktreePool
from agentwaves.plan import Wave
from agentwaves.run.context import BudgetReached, RunContext
from agentwaves.run.integrate import integrate_wave, mark_wave_committed, wave_handoff_markdown, wave_message
from agentwaves.sandbox.bwrap import Sandbox
from agentwaves.state.crash import crashpoint


class WaveCommitter:
    """Commits each wave once all its groups are done. ``cond`` is the run's state lock (as a condition)."""

    def __init__(
        self,
        ctx: RunContext,
        cond: threading.Condition,
        pool: WorktreePool,
        sandbox: Sandbox,
        ref: str,
    ) -> None:
        self.ctx = ctx
        self.cond = cond
        self.pool = pool
        self.sandbox = sandbox
        self.ref = ref
        self.committing = False  # a thread is committing waves (see pending)
        self.failure: BaseException | None = None  # what a committing thread raised; the run stops

    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.ctx.store.state

    def committed(self, index: int) -> bool:
        return self.state.wave(index).state == "done"

    def count(self) -> int:
        """How many waves are committed."""
        return sum(1 for w in self.state.waves if w.state == "done")

    def next_ready(self) -> bool:
        for wave in self.ctx.analysis.waves:
            if not self.committed(wave.index):
                ws = self.state.wave(wave.index)
                return ws.state != "failed" and all(
                    self.state.group(g.name).state == "done" for g in wave.groups
                )
        return False

    def pending(self) -> None:
        """Commit the waves that are ready, in order, in the calling thread (the task thread that settled
        a wave's last group), so that starting tasks never waits for a merge. One committer at a time;
        after a pass that committed something it checks again, so a wave that became ready meanwhile is
        not left behind; a pass that committed nothing (budget reached, conflict) ends it."""
        progress = True
        while progress:
            with self.cond:
                if self.committing or self.failure is not None or not self.next_ready():
                    return
                self.committing = True
                before = self.count()
            try:
                self.ready_waves()
            except BaseException as exc:  # reported by the scheduler's loop, which stops the run
                with self.cond:
                    self.failure = exc
                    self.ctx.stop.set()
            finally:
                with self.cond:
                    self.committing = False
                    progress = self.count() > before
                    self.cond.notify_all()

    def ready_waves(self) -> None:
        for wave in self.ctx.analysis.waves:
            if self.committed(wave.index):
                continue
            with self.cond:
                states = [self.state.group(g.name).state for g in wave.groups]
                ws = self.state.wave(wave.index)
                if ws.state == "failed" or any(s != "done" for s in states):
                    return
            self.commit(wave)
            if not self.committed(wave.index):
                return

    def commit(self, wave: Wave) -> None:
        ctx = self.ctx  # a wave commit made before a crash was adopted by recover_state at the start
        base = head_sha(self.ctx.repo, self.ref)
        ctx.events.emit("wave_merging", wave=wave.index)
        crashpoint("before wave merge")
        try:
            result = integrate_wave(ctx, wave, base, self.pool, self.sandbox)
        except BudgetReached as exc:  # the resolver may not spend more: stop cleanly, resumable
            ctx.stop_reason = str(exc)
            ctx.stop.set()
            return
        crashpoint("after wave merge")
        with self.cond:
            for name, paths in result.resolved.items():
                self.state.group(name).resolved = paths
            for name, paths in result.refused.items():
                self.state.group(name).resolver_refused = paths
            if result.tree is None:
                for name, paths in result.failed.items():
                    gs = self.state.group(name)
                    gs.state, gs.conflicts = "failed", paths
                    gs.error = (
                        f"merge conflict the resolver could not fix in {', '.join(paths)}; "
                        f"branch {gs.branch} is kept"
                    )
                    ctx.events.emit("group_failed", group=name, error=gs.error, logs=[])
                self.state.wave(wave.index).state = "failed"
                ctx.store.save()
                return
            message = wave_message(ctx, wave)
        crashpoint("before wave commit")
        commit = commit_wave(ctx.repo, base, result.tree, message, self.ref)
        crashpoint("after wave commit")
        self._finish(wave, commit)

    def _finish(self, wave: Wave, commit: str) -> None:
        mark_wave_committed(self.ctx, wave, commit)
        notes = self.ctx.run_dir / "handoffs" / f"wave-{wave.index}.md"
        notes.parent.mkdir(parents=True, exist_ok=True)
        with self.cond:
            notes.write_text(wave_handoff_markdown(self.ctx, wave))
        self.ctx.events.emit(
            "wave_committed", wave=wave.index, commit=commit, groups=[g.name for g in wave.groups]
        )
