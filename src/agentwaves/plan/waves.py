"""Groups and waves: one sweep over the group graph, level by level, that also resolves conflicts.

Groups start as the plan says (tasks sharing a ``group`` name; every other task alone). The sweep takes
the groups whose predecessors are all placed (one level, later one wave) and finds the conflicting task
pairs among them:

1. A pair in two groups: merge the groups (the tasks will run one after the other in one worktree) or move
   one group to the next level, whichever the local prediction says ends sooner (ties: merge). Gates are
   never merged.
2. Then, inside each group, the conflicting tasks that nothing orders yet are ordered by a greedy schedule
   of the group: a task waits while a conflicting task runs, longest remaining chain first, so tasks that
   do not conflict still run side by side (``after`` gets only the edges that are needed).

The prediction for a level is ``max(longest group, work / agents)``, with a group's length bounded below by
its longest dependency chain and by the minutes of all its tasks sharing one file or resource; moving a
group costs what it adds to the next level (all of it when it would be serialized there again or would
lengthen the plan). Each decision costs about the size of one level, never a re-simulation of the plan.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(eq=False)
class SweepGroup:
    """A group while the sweep runs; tasks are plan indices. Hashed by identity (``eq=False``)."""

    tasks: list[int]
    gate: bool
    preds: set[SweepGroup] = field(default_factory=set)
    succs: set[SweepGroup] = field(default_factory=set)
    span: float = 0.0  # predicted duration with unlimited agents (a lower bound while merging)
    work: float = 0.0
    load: dict[str, float] = field(default_factory=dict)  # shared file/resource -> minutes of its users
    height: int = 1  # levels from this group to the end of the plan, itself included


@dataclass
class Decision:
    a: int
    b: int
    resolution: str  # "same group" | "later wave"
    moved: int | None = None  # the task whose group moved to a later wave


@dataclass
class SweepResult:
    levels: list[list[SweepGroup]]
    after: list[list[int]]  # plan index -> plan indices of the same group that finish first
    decisions: list[Decision]


class Sweep:
    def __init__(
        self,
        est: Sequence[float],
        deps: Sequence[Sequence[int]],
        gate: Sequence[bool],
        group_key: Sequence[str],
        conflicts: Sequence[Sequence[int]],
        keys: Sequence[Sequence[str]],
        max_agents: int,
    ) -> None:
        """``conflicts[t]``: the tasks ``t`` conflicts with; ``keys[t]``: the files and resources it
        writes or uses (tasks sharing one key all conflict, so a group runs their minutes in sequence)."""
        self.est, self.conf, self.m = est, conflicts, max_agents
        n = len(est)
        by_key: dict[str, SweepGroup] = {}
        self.group: list[SweepGroup] = []
        for i in range(n):
            g = by_key.get(group_key[i])
            if g is None:
                g = by_key[group_key[i]] = SweepGroup([], gate[i])
            g.tasks.append(i)
            self.group.append(g)
        self.after: list[list[int]] = [
            [d for d in deps[i] if self.group[d] is self.group[i]] for i in range(n)
        ]
        for i in range(n):
            gi = self.group[i]
            for d in deps[i]:
                gd = self.group[d]
                if gd is not gi:
                    gi.preds.add(gd)
                    gd.succs.add(gi)
        self.groups = list(by_key.values())
        for g in self.groups:
            g.work = sum(est[t] for t in g.tasks)
            for t in g.tasks:
                for k in keys[t]:
                    g.load[k] = g.load.get(k, 0.0) + est[t]
            g.span = est[g.tasks[0]] if len(g.tasks) == 1 else max(self.heads(g.tasks).values())
            g.span = max(g.span, max(g.load.values(), default=0.0))
        self._base_levels()

    # ---------------------------------------------------------------------------------- inside a group

    def order(self, tasks: Sequence[int]) -> list[int]:
        """``tasks`` (one group) in an order that respects ``after``; ties by plan position."""
        if len(tasks) == 1:
            return list(tasks)
        members = set(tasks)
        indeg = {t: 0 for t in tasks}
        succ: dict[int, list[int]] = {t: [] for t in tasks}
        for t in tasks:
            for p in self.after[t]:
                if p in members:
                    indeg[t] += 1
                    succ[p].append(t)
        heap = [t for t in tasks if indeg[t] == 0]
        heapq.heapify(heap)
        out: list[int] = []
        while heap:
            t = heapq.heappop(heap)
            out.append(t)
            for s in succ[t]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    heapq.heappush(heap, s)
        return out

    def heads(self, tasks: Sequence[int]) -> dict[int, float]:
        """Earliest finish of each task inside its group with unlimited agents."""
        head: dict[int, float] = {}
        for t in self.order(tasks):
            head[t] = self.est[t] + max((head[p] for p in self.after[t]), default=0.0)
        return head

    def tails(self, tasks: Sequence[int]) -> dict[int, float]:
        """Longest chain from each task (itself included) to the end of its group."""
        tail: dict[int, float] = {}
        succ: dict[int, list[int]] = {t: [] for t in tasks}
        for t in tasks:
            for p in self.after[t]:
                succ[p].append(t)
        for t in reversed(self.order(tasks)):
            tail[t] = self.est[t] + max((tail[s] for s in succ[t]), default=0.0)
        return tail

    def _merged_span(self, ga: SweepGroup, a: int, gb: SweepGroup, b: int) -> float:
        """A lower bound on the duration of ``ga`` and ``gb`` as one group with ``a`` and ``b`` in turn:
        the longest chain through the better of a->b / b->a, and every shared key's users in sequence."""
        ha, ta = self.heads(ga.tasks), self.tails(ga.tasks)
        hb, tb = self.heads(gb.tasks), self.tails(gb.tasks)
        through = min(ha[a] + tb[b], hb[b] + ta[a])
        small, big = (ga.load, gb.load) if len(ga.load) <= len(gb.load) else (gb.load, ga.load)
        clique = max((v + big[k] for k, v in small.items() if k in big), default=0.0)
        return max(ga.span, gb.span, through, clique)

    # -------------------------------------------------------------------------------------- the sweep

    def _base_levels(self) -> None:
        """Levels and heights without conflicts: the yardstick for predicting the next level."""
        indeg = {g: len(g.preds) for g in self.groups}
        frontier = [g for g in self.groups if not g.preds]
        topo: list[SweepGroup] = []
        level = 0
        self.base_span: dict[int, float] = {}
        while frontier:
            level += 1
            self.base_span[level] = max(g.span for g in frontier)
            nxt = []
            for g in frontier:
                topo.append(g)
                for s in g.succs:
                    indeg[s] -= 1
                    if indeg[s] == 0:
                        nxt.append(s)
            frontier = nxt
        for g in reversed(topo):
            g.height = 1 + max((s.height for s in g.succs), default=0)
        self.horizon = level

    def run(self) -> SweepResult:
        levels: list[list[SweepGroup]] = []
        decisions: list[Decision] = []
        indeg = {g: len(g.preds) for g in self.groups}
        ready = sorted((g for g in self.groups if not g.preds), key=lambda g: g.tasks[0])
        extra: dict[int, float] = {}
        while ready:
            level = len(levels) + 1
            here = {g: None for g in ready}  # ordered set of this level's groups
            deferred: list[SweepGroup] = []
            moved: set[int] = set()  # tasks moved to the next level
            found: list[Decision] = []
            for a, b in self._pairs(here):
                ga, gb = self.group[a], self.group[b]
                if ga is gb or ga not in here or gb not in here:
                    continue  # ordered inside the group below, or no longer on this level
                choice = self._choose(here, ga, a, gb, b, level, extra, moved)
                if not isinstance(choice, SweepGroup):  # merge; _orient orders the tasks below
                    keep = self._merge(ga, gb, indeg)
                    keep.span = choice
                    del here[gb if keep is ga else ga]
                else:
                    del here[choice]
                    deferred.append(choice)
                    moved.update(choice.tasks)
                    extra[level + 1] = max(extra.get(level + 1, 0.0), choice.span)
                    self.horizon = max(self.horizon, level + choice.height)
                    found.append(Decision(a, b, "later wave", a if choice is ga else b))
            placed = sorted(here, key=lambda g: g.tasks[0])
            for g in placed:
                found += [Decision(min(u, t), max(u, t), "same group") for u, t in self._orient(g)]
            decisions += sorted(found, key=lambda d: (d.a, d.b))
            levels.append(placed)
            nxt = deferred
            for g in placed:
                for s in g.succs:
                    indeg[s] -= 1
                    if indeg[s] == 0:
                        nxt.append(s)
            ready = sorted(nxt, key=lambda g: g.tasks[0])
        return SweepResult(levels, self.after, decisions)

    def _orient(self, g: SweepGroup) -> list[tuple[int, int]]:
        """Order the conflicting tasks of one group that nothing orders yet; returns the edges added.

        A greedy schedule of the group (unlimited agents, longest remaining chain first) in which a task
        waits while a conflicting task runs; a task goes after each conflicting task that finished before
        it started, unless that order already follows from ``after`` (so the edges stay few).
        """
        if len(g.tasks) < 2:
            return []
        members = set(g.tasks)
        partners = {t: [u for u in self.conf[t] if u in members] for t in g.tasks}
        if not any(partners.values()):
            return []
        succ: dict[int, list[int]] = {t: [] for t in g.tasks}
        indeg = dict.fromkeys(g.tasks, 0)
        for t in g.tasks:
            for p in self.after[t]:
                succ[p].append(t)
                indeg[t] += 1
        tail = self.tails(g.tasks)
        bit = {t: 1 << k for k, t in enumerate(g.tasks)}
        ancestors: dict[int, int] = {}
        blocked = dict.fromkeys(g.tasks, 0)  # how many conflicting tasks are running
        finished: dict[int, float] = {}
        ready = [(-tail[t], t) for t in g.tasks if indeg[t] == 0]
        running: list[tuple[float, int]] = []
        added: list[tuple[int, int]] = []
        now = 0.0
        while ready or running:
            ready.sort()
            waiting = []
            for item in ready:
                t = item[1]
                if blocked[t]:
                    waiting.append(item)
                    continue
                anc = 0
                for p in self.after[t]:
                    anc |= ancestors[p] | bit[p]
                for u in sorted((u for u in partners[t] if u in finished), key=lambda u: -finished[u]):
                    if not anc & bit[u]:
                        self.after[t].append(u)
                        added.append((u, t))
                        anc |= ancestors[u] | bit[u]
                ancestors[t] = anc
                for u in partners[t]:
                    blocked[u] += 1
                heapq.heappush(running, (now + self.est[t], t))
            ready = waiting
            now, t = heapq.heappop(running)
            finished[t] = now
            for u in partners[t]:
                blocked[u] -= 1
            for s in succ[t]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    ready.append((-tail[s], s))
        return added

    def _pairs(self, here: dict[SweepGroup, None]) -> list[tuple[int, int]]:
        pairs = []
        for g in here:
            for a in g.tasks:
                for b in self.conf[a]:
                    if a < b and self.group[b] in here:
                        pairs.append((a, b))
        pairs.sort()
        return pairs

    def _choose(
        self,
        here: dict[SweepGroup, None],
        ga: SweepGroup,
        a: int,
        gb: SweepGroup,
        b: int,
        level: int,
        extra: dict[int, float],
        moved: set[int],
    ) -> float | SweepGroup:
        """Merge (returns the merged group's predicted span) or the group to move to the next level."""
        work = sum(g.work for g in here)
        spans = heapq.nlargest(3, ((g.span, g.tasks[0], g) for g in here), key=lambda s: (s[0], -s[1]))

        def longest_without(*skip: SweepGroup) -> float:
            return next((s for s, _, g in spans if g not in skip), 0.0)

        now = max(spans[0][0], work / self.m)
        nxt = max(self.base_span.get(level + 1, 0.0), extra.get(level + 1, 0.0))
        options: list[tuple[float, int, float | SweepGroup]] = []
        if not ga.gate and not gb.gate:
            span = self._merged_span(ga, a, gb, b)
            options.append((max(longest_without(ga, gb), span, work / self.m) - now, 0, span))
        for rank, h in ((1, gb), (2, ga)) if gb.tasks[0] > ga.tasks[0] else ((1, ga), (2, gb)):
            if level + h.height > self.horizon or self._conflicts_with(h, moved):
                later = h.span  # it lengthens the plan, or it would be serialized there again
            else:
                later = max(0.0, h.span - nxt)  # it fits beside what the next level holds
            cost = max(longest_without(h), (work - h.work) / self.m) - now + later
            options.append((cost, rank, h))
        best = min(options, key=lambda o: (round(o[0], 9), o[1]))
        return best[2]

    def _conflicts_with(self, g: SweepGroup, tasks: set[int]) -> bool:
        return bool(tasks) and any(u in tasks for t in g.tasks for u in self.conf[t])

    def _merge(self, ga: SweepGroup, gb: SweepGroup, indeg: dict[SweepGroup, int]) -> SweepGroup:
        keep, gone = (ga, gb) if len(ga.tasks) >= len(gb.tasks) else (gb, ga)
        for t in gone.tasks:
            self.group[t] = keep
        keep.tasks = sorted(keep.tasks + gone.tasks)
        keep.work += gone.work
        for k, v in gone.load.items():
            keep.load[k] = keep.load.get(k, 0.0) + v
        keep.height = max(keep.height, gone.height)
        for p in gone.preds:
            p.succs.discard(gone)
            p.succs.add(keep)
            keep.preds.add(p)
        for s in gone.succs:
            s.preds.discard(gone)
            if s in keep.succs:
                indeg[s] -= 1  # it counted both groups as unplaced predecessors
            else:
                keep.succs.add(s)
            s.preds.add(keep)
        return keep
