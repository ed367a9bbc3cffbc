"""Zero-overhead simulations: what each schedule would take if starting, committing and git cost nothing.

:func:`simulate` replays the start rules of :class:`agentwaves.run.executor.Executor` (in-group
``after``; conflicting tasks never overlap and a later-wave task waits for an earlier-wave conflicting one;
at most ``agents`` tasks; ``waves`` waits for the previous wave's commit, ``sequential`` runs one group at
a time, ``eager`` opens a group once every group it builds on is done; ready tasks start in the
executor's order, see :data:`PRIORITIES`) as a discrete-event simulation with each task lasting exactly
its estimate. Not modelled: gates'
one-at-a-time rule beyond "after every earlier wave's commit", and an eager group whose stacked base would
conflict (the executor then waits for the commit). The measured makespan divided by the simulated one is
the cost of the run's own overhead; the simulated one divided by the lower bound is the schedule's.

:func:`list_schedule` is the textbook reference: list scheduling by longest remaining path (critical
path first) with dependencies only, no conflicts and no groups.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from agentwaves.plan import Analysis, Plan, Task

PRIORITIES = {
    "executor": "longest remaining chain first, as the executor does: within the wave over in-group "
    "`after` for waves and sequential; for eager to the plan's end over every precedence it enforces "
    "(dependencies, `after`, earlier-wave conflicting tasks before later-wave ones; since 3603555)",
    "plan": "plan order: waves, groups, tasks (the executor before 09ce194)",
    "deps": "eager: longest remaining chain over dependencies and `after` only (09ce194 to 3603555)",
}


@dataclass
class _Sim:
    analysis: Analysis
    schedule: str
    agents: int
    priority: str = "executor"

    def __post_init__(self) -> None:
        a = self.analysis
        self.tasks = a.plan.by_id
        self.wave_of = {t: w.index for w in a.waves for g in w.groups for t in g.tasks}
        self.group_of = {t: g for w in a.waves for g in w.groups for t in g.tasks}
        self.groups = {g.name: g for w in a.waves for g in w.groups}
        self.state = {t: "pending" for t in self.tasks}
        self.opened: set[str] = set()
        self.committed: set[int] = set()
        self.running: set[str] = set()
        self.tail = ranks(self.analysis, self.schedule, self.priority)
        self.index = {t.id: i for i, t in enumerate(a.plan.tasks)}

    def group_done(self, name: str) -> bool:
        return all(self.state[t] == "done" for t in self.groups[name].tasks)

    def earlier_committed(self, index: int) -> bool:
        return all(w.index in self.committed for w in self.analysis.waves if w.index < index)

    def dep_groups(self, tid: str) -> set[str]:
        names = {self.group_of[d].name for d in self.tasks[tid].depends_on}
        wave = self.wave_of[tid]
        names |= {self.group_of[o].name for o in self.analysis.conflicts_of(tid) if self.wave_of[o] < wave}
        return names

    def can_start(self, tid: str) -> bool:
        if self.state[tid] != "pending":
            return False
        group = self.group_of[tid]
        if any(self.state[d] != "done" for d in group.after.get(tid, [])):
            return False
        task = self.tasks[tid]
        if any(self.state[d] != "done" for d in task.depends_on):
            return False
        if task.kind == "gate":
            return self.earlier_committed(self.wave_of[tid])
        for other in self.analysis.conflicts_of(tid):
            if other in self.running:
                return False
            if self.wave_of[other] < self.wave_of[tid] and self.state[other] != "done":
                return False
        if group.name not in self.opened and self.schedule == "eager":
            names = {n for t in group.tasks for n in self.dep_groups(t)} - {group.name}
            return all(self.group_done(n) for n in names)
        return True

    def sequential_turn(self, name: str) -> bool:
        for w in self.analysis.waves:
            for g in w.groups:
                if not self.group_done(g.name):
                    return g.name == name
        return False

    def candidates(self) -> list[str]:
        """Tasks in the order the executor tries them: waves, groups, tasks (or longest path first)."""
        out: list[str] = []
        for wave in self.analysis.waves:
            if wave.index in self.committed:
                continue
            if self.schedule != "eager" and not self.earlier_committed(wave.index):
                break
            for group in wave.groups:
                if self.schedule == "sequential" and not self.sequential_turn(group.name):
                    continue
                out.extend(t for t in group.tasks if self.state[t] == "pending")
        if self.tail:
            out.sort(key=lambda t: (-self.tail[t], self.index[t]))  # ties: plan order, as the executor
        return out

    def start_ready(self) -> list[str]:
        started: list[str] = []
        for tid in self.candidates():
            if len(self.running) >= self.agents:
                break
            if self.can_start(tid):
                self.state[tid] = "running"
                self.running.add(tid)
                self.opened.add(self.group_of[tid].name)
                started.append(tid)
        return started

    def commit_ready(self) -> None:
        for wave in self.analysis.waves:
            if wave.index in self.committed:
                continue
            if not all(self.state[t] == "done" for t in wave.tasks):
                return
            self.committed.add(wave.index)

    def run(self) -> float:
        clock = 0.0
        events: list[tuple[float, str]] = []
        while True:
            self.commit_ready()
            for tid in self.start_ready():
                heapq.heappush(events, (clock + self.tasks[tid].estimate, tid))
            if not events:
                break
            clock, tid = heapq.heappop(events)
            finished = [tid]
            while events and events[0][0] <= clock:
                finished.append(heapq.heappop(events)[1])
            for t in finished:
                self.state[t] = "done"
                self.running.discard(t)
        if any(s != "done" for s in self.state.values()):
            raise RuntimeError(f"simulation of {self.schedule!r} stalled")
        return clock


def simulate(analysis: Analysis, schedule: str, agents: int, priority: str = "executor") -> float:
    """The makespan (plan minutes) of ``schedule`` under the executor's start rules, with no overhead;
    ``priority`` is the order in which ready tasks start (:data:`PRIORITIES`)."""
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}")
    return _Sim(analysis, schedule, agents, priority).run()


def ranks(analysis: Analysis, schedule: str, priority: str) -> dict[str, float]:
    """Per task, the remaining chain length the start order sorts by (empty: plan order)."""
    if priority == "plan":
        return {}
    if priority == "executor" and schedule == "eager":
        return effective_tails(analysis)
    tasks = analysis.plan.by_id
    preds: dict[str, set[str]] = {}
    for w in analysis.waves:
        for g in w.groups:
            for tid in g.tasks:
                preds[tid] = set(g.after.get(tid, []))
                if schedule == "eager":
                    preds[tid] |= set(tasks[tid].depends_on)
    return _tails(tasks, preds)


def effective_tails(analysis: Analysis) -> dict[str, float]:
    """Per task, the longest path from its start to the end of the plan over the precedences the executor
    enforces: dependencies, in-group ``after``, and earlier-wave conflicting tasks before later-wave ones."""
    tasks = analysis.plan.by_id
    wave = {t: w.index for w in analysis.waves for t in w.tasks}
    after = {t: g.after.get(t, []) for w in analysis.waves for g in w.groups for t in g.tasks}
    preds: dict[str, set[str]] = {}
    for tid, task in tasks.items():
        earlier = {o for o in analysis.conflicts_of(tid) if wave[o] < wave[tid]}
        preds[tid] = set(task.depends_on) | set(after[tid]) | earlier
    return _tails(tasks, preds)


def _tails(tasks: dict[str, Task], preds: dict[str, set[str]]) -> dict[str, float]:
    children: dict[str, list[str]] = {t: [] for t in tasks}
    indeg = {t: len(p) for t, p in preds.items()}
    for t, ps in preds.items():
        for p in ps:
            children[p].append(t)
    order = [t for t, n in indeg.items() if n == 0]
    for t in order:  # grows while iterating: Kahn's algorithm
        for c in children[t]:
            indeg[c] -= 1
            if indeg[c] == 0:
                order.append(c)
    tail: dict[str, float] = {}
    for t in reversed(order):
        tail[t] = tasks[t].estimate + max((tail[c] for c in children[t]), default=0.0)
    return tail


def list_schedule(plan: Plan, agents: int) -> float:
    """List scheduling by longest remaining path, dependencies only: the textbook reference (minutes)."""
    tasks = plan.by_id
    children: dict[str, list[str]] = {t: [] for t in tasks}
    for t in plan.tasks:
        for d in t.depends_on:
            children[d].append(t.id)
    tail = _tails(tasks, {t.id: set(t.depends_on) for t in plan.tasks})
    waiting = {t.id: len(t.depends_on) for t in plan.tasks}
    ready = [(-tail[t], t) for t, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    events: list[tuple[float, str]] = []
    clock = 0.0
    while ready or events:
        while ready and len(events) < agents:
            _, t = heapq.heappop(ready)
            heapq.heappush(events, (clock + tasks[t].estimate, t))
        clock, t = heapq.heappop(events)
        for c in children[t]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, (-tail[c], c))
    return clock
