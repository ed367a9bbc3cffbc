"""Property tests on random plans, and fuzzing of the loaders: never a traceback, always the invariants."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agentwaves.plan import (
    Analysis,
    Plan,
    PlanError,
    analyze,
    dump_plan_yaml,
    parse_pipeline,
    parse_plan_yaml,
)
from agentwaves.plan.load import plan_from_data
from agentwaves.plan.model import ref_safe_problem

FILES = [
    "src/a.py",
    "src/b.py",
    "src/",
    "src/*.py",
    "src/**/x.py",
    "src/util/x.py",
    "lib/c.py",
    "lib/",
    "docs/**",
]
RESOURCES = ["db:x", "port:8080"]
EPS = 1e-9


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    n = draw(st.integers(1, 12))
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        gate = draw(st.integers(0, 9)) == 0
        task: dict[str, Any] = {
            "id": f"t{i}",
            "title": f"Task {i}",
            "depends_on": [f"t{d}" for d in draw(st.sets(st.integers(0, i - 1), max_size=3))] if i else [],
            "resources": draw(st.lists(st.sampled_from(RESOURCES), max_size=1)),
            "estimate": draw(st.sampled_from([0, 1, 2, 2.5, 5, 10, 30])),
        }
        if gate:
            task.update(kind="gate", command="make test")
        else:
            task["files"] = draw(st.lists(st.sampled_from(FILES), max_size=3))
            if draw(st.integers(0, 3)) == 0:
                task["group"] = draw(st.sampled_from(["g1", "g2"]))
        tasks.append(task)
    try:
        return Plan.model_validate({"feature": "random", "tasks": tasks})
    except ValueError:  # explicit groups that wait for each other: not a plan
        assume(False)
        raise


def ancestors(after: dict[str, list[str]], task: str) -> set[str]:
    seen: set[str] = set()
    stack = list(after.get(task, ()))
    while stack:
        t = stack.pop()
        if t not in seen:
            seen.add(t)
            stack.extend(after.get(t, ()))
    return seen


def check_invariants(plan: Plan, a: Analysis) -> None:
    ids = [t.id for t in plan.tasks]
    placed = [t for w in a.waves for g in w.groups for t in g.tasks]
    assert sorted(placed) == sorted(ids) and len(placed) == len(set(placed))  # exactly one wave and group
    assert [w.index for w in a.waves] == list(range(1, len(a.waves) + 1))
    names = [g.name for w in a.waves for g in w.groups]
    assert len(names) == len(set(names))
    assert all(ref_safe_problem(name, "group name") is None for name in names)
    for w in a.waves:
        for g in w.groups:
            assert set(g.after) == set(g.tasks)
            for i, t in enumerate(g.tasks):  # tasks listed in an order after respects
                assert all(p in g.tasks[:i] for p in g.after[t])
            if any(plan.task(t).is_gate for t in g.tasks):
                assert g.gate and len(g.tasks) == 1
    for t in plan.tasks:  # explicit groups stay together
        if t.group is not None:
            assert all(a.group_of(u.id) is a.group_of(t.id) for u in plan.tasks if u.group == t.group)
    for t in plan.tasks:  # every dependency earlier: an earlier wave, or earlier in the same group
        for d in t.depends_on:
            wd, wt = a.wave_of(d).index, a.wave_of(t.id).index
            assert wd < wt or (
                wd == wt
                and a.group_of(d) is a.group_of(t.id)
                and d in ancestors(a.group_of(t.id).after, t.id)
            )
            assert a.schedule[d][1] <= a.schedule[t.id][0] + EPS
    for c in a.conflicts:  # no two conflicting tasks at the same time
        if a.wave_of(c.a) is a.wave_of(c.b):
            g = a.group_of(c.a)
            assert g is a.group_of(c.b)
            assert c.a in ancestors(g.after, c.b) or c.b in ancestors(g.after, c.a)
        (s1, e1), (s2, e2) = a.schedule[c.a], a.schedule[c.b]
        assert e1 <= s2 + EPS or e2 <= s1 + EPS or e1 == s1 or e2 == s2
    points = [tuple(p.tasks) for p in a.serialization_points]
    assert set(points) <= {(c.a, c.b) for c in a.conflicts}
    e = a.estimates
    assert e.theoretical <= e.practical + EPS and e.practical <= e.serial + EPS
    assert e.theoretical <= e.groups_sequential + EPS and e.groups_sequential <= e.serial + EPS
    events = sorted((time, kind) for s, f in a.schedule.values() if f > s for time, kind in ((s, 1), (f, -1)))
    running = peak = 0
    for _, kind in sorted(events, key=lambda ev: (ev[0], ev[1])):
        running += kind
        peak = max(peak, running)
    assert peak <= a.max_agents
    assert abs(max((f for _, f in a.schedule.values()), default=0) - e.practical) < 1e-6


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(plans(), st.integers(1, 4))
def test_analysis_invariants(plan: Plan, agents: int) -> None:
    a = analyze(plan, max_agents=agents)
    check_invariants(plan, a)
    assert analyze(plan, max_agents=agents).to_json() == a.to_json()  # deterministic


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(plans())
def test_yaml_round_trip(plan: Plan) -> None:
    assert parse_plan_yaml(dump_plan_yaml(plan)) == plan


# -------------------------------------------------------------------------------------------- fuzzing


def one_line_error(exc: PlanError) -> None:
    message = str(exc)
    assert message and len(message.splitlines()) == 1, repr(message)


def parse_or_plan_error(parse: Any, text: str) -> None:
    try:
        plan = parse(text)
    except PlanError as exc:
        one_line_error(exc)
        return
    assert isinstance(plan, Plan)
    check_invariants(plan, analyze(plan))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_yaml_loader_fuzz_text(text: str) -> None:
    parse_or_plan_error(parse_plan_yaml, text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_pipeline_fuzz_text(text: str) -> None:
    parse_or_plan_error(parse_pipeline, text)


CELLS = st.sampled_from(
    ["1", "2", "3", "01", "0", "-1", "x", "-", "", " 10 ", "nan", "1e400", "2.5", "be", "a b", "g.lock"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(CELLS, st.text(max_size=5)), min_size=5, max_size=8), max_size=8))
def test_pipeline_fuzz_rows(rows: list[list[str]]) -> None:
    parse_or_plan_error(parse_pipeline, "\n".join(" | ".join(r) for r in rows))


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["a", "b", "gate", "task", "src/a.py", "../x", "/abs", "g1", "x y"]),
)
FIELDS = [
    "id",
    "title",
    "prompt",
    "depends_on",
    "files",
    "resources",
    "group",
    "kind",
    "command",
    "estimate",
    "meta",
    "bogus",
]
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
TASKS = st.lists(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6), max_size=5)


@settings(max_examples=300, deadline=None)
@given(st.one_of(VALUES, st.fixed_dictionaries({"tasks": TASKS}, optional={"feature": VALUES, "x": VALUES})))
def test_yaml_loader_fuzz_structures(data: Any) -> None:
    parse_or_plan_error(parse_plan_yaml, yaml.safe_dump(data))
    if isinstance(data, dict):
        try:
            plan_from_data(data, "submitted plan")
        except PlanError as exc:
            one_line_error(exc)
