"""When a gate fails after a wave of several groups: find the group(s) that break it, repair, recommit.

Each group of the wave before the gate is merged alone (a real merge, :func:`~agentwaves.git.stacking.
stack`, against its fork point) on that wave's parent, checked out in a scratch worktree, and the
gate's command runs there (:func:`~agentwaves.run.feedback.gates.execute_gate`), in parallel, at most
``max_agents`` at once; with more groups than that, halves are tested and only failing halves split
further (bisection). A group whose merge fails the gate is a culprit:

- up to ``repair_attempts`` times its last task's agent runs again with the gate's output
  (:mod:`agentwaves.run.feedback.rerun`); if the gate then passes on it, the group is no culprit any more;
- the wave is committed again with the other groups (:mod:`agentwaves.run.feedback.rebuild`); the culprits are
  held out of it and fail with the gate's output; the gate runs again once no group is held.

If every group passes alone, or the gate fails on the wave's parent too, no group is to blame and the
gate fails as before, saying so.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from agentwaves.git.ops import git
from agentwaves.git.pool import WorktreePool
from agentwaves.git.stacking import Branch, stack
from agentwaves.plan import Wave
from agentwaves.plan.model import Task
from agentwaves.run.context import RunContext
from agentwaves.run.feedback.gates import GateRun, execute_gate, repair_attempts, scratch_worktree, tail
from agentwaves.run.feedback.rebuild import recommit_wave
from agentwaves.run.feedback.rerun import rerun_task
from agentwaves.sandbox.bwrap import Sandbox
from agentwaves.state.crash import crashpoint
from agentwaves.state.feedback import Repair
from agentwaves.state.store import now_iso

Verdict = GateRun | None  # None: the groups did not merge cleanly on their own, so they were not tested


@dataclass
class Search:
    culprits: list[str]
    untestable: list[str]
    tests: int


class GateTester:
    """Runs one gate on merges of some of a wave's groups onto ``parent``, each in a scratch worktree."""

    def __init__(
        self, ctx: RunContext, gate: Task, parent: str, sandbox: Sandbox, branches: dict[str, Branch]
    ):
        self.ctx, self.gate, self.parent, self.sandbox = ctx, gate, parent, sandbox
        self.branches = branches
        self.tests = 0
        self._lock = threading.Lock()
        self._root = ctx.run_dir.parent.parent / "worktrees" / ctx.run_id

    def test(self, groups: list[str]) -> Verdict:
        commit, _, conflicts = stack(self.ctx.repo, self.parent, [self.branches[g] for g in groups])
        if conflicts:
            return None
        with self._lock:
            self.tests += 1
            n = self.tests
        label = "+".join(groups) if groups else "parent"
        crashpoint("before culprit test")
        with scratch_worktree(self.ctx.repo, self._root / f"_gate-{self.gate.id}-{n}", commit) as tree:
            baseline = (self.ctx.store.state.baseline or {}).get(self.gate.id)
            run = execute_gate(self.ctx.config, self.gate, tree, self.sandbox, baseline)
        log = self.ctx.log_path(f"{self.gate.id}.on-{label[:80]}")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(self.ctx.redactor.redact(f"$ {run.command}\n{run.output}\n[exit {run.exit_code}]\n"))
        self.ctx.events.emit("culprit_test", gate=self.gate.id, groups=groups, ok=run.ok, log=str(log))
        return run


def search(
    tester: GateTester, groups: list[str], limit: int
) -> tuple[list[str], dict[str, GateRun], list[str]]:
    """The groups that fail the gate merged alone (with their runs), and those that could not be tested.

    ``groups`` together are known to fail. Up to ``limit`` of them: each is tested, all at once; more:
    both halves are tested and only a failing (or unmergeable) half is searched further."""
    culprits: list[str] = []
    runs: dict[str, GateRun] = {}
    untestable: list[str] = []
    if len(groups) == 1:
        return list(groups), runs, untestable  # the gate's own run is this group's
    with ThreadPoolExecutor(max_workers=max(1, limit)) as pool:

        def classify(name: str, verdict: Verdict) -> None:
            if verdict is None:
                untestable.append(name)
            elif not verdict.ok:
                culprits.append(name)
                runs[name] = verdict

        def visit(subset: list[str]) -> None:
            if len(subset) <= limit:
                for name, verdict in zip(subset, pool.map(lambda g: tester.test([g]), subset), strict=True):
                    classify(name, verdict)
                return
            half = len(subset) // 2
            parts = [subset[:half], subset[half:]]
            for part, verdict in zip(parts, list(pool.map(tester.test, parts)), strict=True):
                if len(part) == 1:
                    classify(part[0], verdict)
                elif verdict is None or not verdict.ok:
                    visit(part)

        visit(groups)
    return sorted(culprits, key=groups.index), runs, untestable


class Feedback:
    """The executor's hook for failed gates (one per run; called from the gate's thread)."""

    def __init__(
        self, ctx: RunContext, cond: threading.Condition, pool: WorktreePool, sandbox: Sandbox, ref: str
    ):
        self.ctx, self.cond, self.pool, self.sandbox, self.ref = ctx, cond, pool, sandbox, ref
        self.searched: set[tuple[str, str]] = set()  # (gate, wave commit) already searched in this process

    def gate_failed(self, gate: Task, gate_wave: Wave, run: GateRun) -> None:
        """Find the culprits of ``gate``'s failure among the groups of the last committed task wave."""
        ctx = self.ctx
        wave = self._wave_before(gate_wave)
        if wave is None:
            return
        with self.cond:
            ws = ctx.store.state.wave(wave.index)
            commit = ws.commit
            states = [ctx.store.state.group(g.name) for g in wave.groups if not g.gate]
            branches = {g.name: Branch(g.name, g.head, g.base or "") for g in states if g.head and g.base}
        if not commit or len(branches) != len(states) or (gate.id, commit) in self.searched:
            return
        self.searched.add((gate.id, commit))
        parent = git(ctx.repo, "rev-parse", f"{commit}^1")
        names = [g.name for g in states]
        tester = GateTester(ctx, gate, parent, self.sandbox, branches)
        limit = ctx.config.max_agents
        ctx.events.emit("culprit_search", gate=gate.id, wave=wave.index, groups=names)
        culprits, runs, untestable = search(tester, names, limit)
        if culprits and len(culprits) == len(names):
            base_run = tester.test([])
            if base_run is not None and not base_run.ok:
                self._blame_none(gate, wave, f"the gate fails on wave {wave.index}'s parent too")
                return
        if not culprits:
            why = "each group passes it on its own, only their combination fails"
            if untestable:
                why = f"groups {', '.join(untestable)} could not be merged on their own to be tested"
            self._blame_none(gate, wave, why)
            return
        for name in culprits:
            if name not in runs:  # a one-group wave: its own run is the gate's
                runs[name] = run
        repaired = self._repair(gate, wave, culprits, runs, tester)
        held = [c for c in culprits if c not in repaired]
        joined = [n for n in names if n not in held]
        if len(joined) > 1:  # each passed alone; together?
            check = tester.test(joined)
            if check is None or not check.ok:
                how = "do not merge without the resolver" if check is None else "pass alone but fail together"
                self._blame_none(gate, wave, f"groups {', '.join(joined)} {how}")
                return
        heads = {name: tester.branches[name].head for name in repaired}
        self._recommit(gate, wave, commit, joined, held, runs, heads)

    def _wave_before(self, gate_wave: Wave) -> Wave | None:
        for w in reversed(self.ctx.analysis.waves):
            if w.index < gate_wave.index and any(not g.gate for g in w.groups):
                return w if self.ctx.store.state.wave(w.index).state == "done" else None
        return None

    def _blame_none(self, gate: Task, wave: Wave, why: str) -> None:
        with self.cond:
            ts = self.ctx.store.state.task(gate.id)
            ts.error = f"{ts.error}; no single group of wave {wave.index} is to blame: {why}"
            self.ctx.store.save()
        self.ctx.events.emit("culprit_none", gate=gate.id, wave=wave.index, reason=why)

    def _repair(
        self, gate: Task, wave: Wave, culprits: list[str], runs: dict[str, GateRun], tester: GateTester
    ) -> set[str]:
        attempts = repair_attempts(self.ctx.config, gate)
        repaired: set[str] = set()
        if attempts <= 0:
            return repaired

        def one(name: str) -> bool:
            group = next(g for g in wave.groups if g.name == name)
            last = group.tasks[-1]
            output = runs[name].output
            for n in range(1, attempts + 1):
                head = tester.branches[name].head
                feedback = (
                    f"# The gate `{gate.id}` fails with your work\n\nIts command `{gate.command}` "
                    f"{runs[name].why()} when your group's work is merged. Its output (trimmed):\n\n"
                    f"```\n{tail(output)}\n```\n\nFix your work so that the gate passes, then finish."
                )
                self.ctx.events.emit("repair_started", group=name, task=last, attempt=n, gate=gate.id)
                rerun = rerun_task(
                    self.ctx, last, name, head, feedback, kind="repair", number=n, pool=self.pool,
                    sandbox=self.sandbox,
                )  # fmt: skip
                record = Repair(attempt=n, task=last, gate=gate.id, output=tail(output, 2000))
                record.cost_usd, record.commit, record.error = rerun.cost_usd, rerun.commit, rerun.error
                if rerun.commit:  # the group's head in the state moves only with the wave's recommit
                    base = tester.branches[name].fork
                    tester.branches[name] = Branch(name, rerun.commit, base)
                    verdict = tester.test([name])
                    record.passed = verdict is not None and verdict.ok
                    if verdict is not None:
                        output = verdict.output
                        runs[name] = verdict
                record.finished = now_iso()
                with self.cond:
                    self.ctx.store.state.group(name).repairs.append(record)
                    self.ctx.store.save()
                self.ctx.events.emit("repair_done", group=name, task=last, attempt=n, passed=record.passed)
                crashpoint("after repair")
                if record.passed:
                    return True
            return False

        with ThreadPoolExecutor(max_workers=max(1, self.ctx.config.max_agents)) as pool:
            for name, ok in zip(culprits, pool.map(one, culprits), strict=True):
                if ok:
                    repaired.add(name)
        return repaired

    def _recommit(
        self,
        gate: Task,
        wave: Wave,
        old: str,
        joined: list[str],
        held: list[str],
        runs: dict[str, GateRun],
        heads: dict[str, str],
    ) -> None:
        errors = {
            name: f"broke gate {gate.id}: `{gate.command}` {runs[name].why()} with this group merged alone; "
            f"output: {' | '.join(tail(runs[name].output, 600).splitlines()[-8:])}"
            for name in held
        }
        if not recommit_wave(self.ctx, self.cond, self.ref, wave, old, joined, held, errors, heads):
            self._blame_none(gate, wave, f"groups {', '.join(joined)} do not merge without the resolver")
            return
        with self.cond:
            ts = self.ctx.store.state.task(gate.id)
            ts.state, ts.error = "pending", None  # runs again on the new commit (once nothing is held)
            for g in self.ctx.store.state.waves[-1::-1]:
                for gs in g.groups:
                    if any(t.id == gate.id for t in gs.tasks):
                        gs.state = "pending"
            self.ctx.store.save()
        self.ctx.events.emit("culprits", gate=gate.id, wave=wave.index, held=held, joined=joined)
