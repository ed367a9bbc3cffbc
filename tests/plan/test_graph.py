"""The analysis: the seed's and the article's reference results, groups, conflicts, estimates, JSON."""

from __future__ import annotations

import re

import pytest

from agentwaves.plan import Analysis, PlanError, analyze, load_plan
from agentwaves.plan.model import ref_safe_problem

from .helpers import EXAMPLES, make_plan


def shape(analysis: Analysis) -> list[list[tuple[str, list[str]]]]:
    return [[(g.name, g.tasks) for g in w.groups] for w in analysis.waves]


def estimates(analysis: Analysis) -> dict[str, object]:
    return analysis.to_json()["estimates"]


def test_seed_example_1() -> None:
    a = analyze(load_plan(EXAMPLES / "example1.pipeline"))
    assert shape(a) == [
        [("1", ["1"])],
        [("backend", ["2", "3"])],
        [("4", ["4"])],
        [("web-features", ["5", "6"]), ("mobile-features", ["7", "8"])],
        [("9", ["9"])],
    ]
    assert estimates(a) == {"serial": 210, "groups_sequential": 120, "theoretical": 90, "practical": 90}
    assert [w.index for w in a.waves] == [1, 2, 3, 4, 5]
    assert a.critical_path[0] == "1" and a.critical_path[-1] == "9" and len(a.critical_path) == 5
    assert a.serialization_points == [] and a.conflicts == []
    assert len(a.warnings) == 1 and "9 tasks have no files" in a.warnings[0]


def test_seed_example_2() -> None:
    a = analyze(load_plan(EXAMPLES / "example2.pipeline"))
    assert shape(a) == [[("1", ["1"])], [("dev", ["2", "3", "4"])], [("5", ["5"])]]
    assert estimates(a)["practical"] == 50 and estimates(a)["groups_sequential"] == 50


def test_seed_example_3() -> None:
    a = analyze(load_plan(EXAMPLES / "example3.pipeline"))
    assert [[g.name for g in w.groups] for w in a.waves] == [
        ["1"],
        ["backend"],
        ["4"],
        ["web-app", "mobile-app"],
        ["9"],
        ["email-integration", "sms-integration"],
        ["12"],
    ]
    assert estimates(a) == {"serial": 280, "groups_sequential": 190, "theoretical": 130, "practical": 130}


def test_max_agents_limits_the_practical_estimate() -> None:
    plan = load_plan(EXAMPLES / "example1.pipeline")
    assert (
        estimates(analyze(plan, max_agents=2))["practical"] == 120
    )  # wave 4: four 30-minute steps, two at a time
    assert estimates(analyze(plan, max_agents=1))["practical"] == 210
    with pytest.raises(PlanError):
        analyze(plan, max_agents=0)


def test_article_example() -> None:
    a = analyze(load_plan(EXAMPLES / "article.yaml"))
    assert estimates(a) == {"serial": 7, "groups_sequential": 6, "theoretical": 4, "practical": 5}
    assert a.warnings == []
    assert {(c.a, c.b) for c in a.conflicts} == {("2", "3"), ("3", "4")}
    assert a.waves[0].tasks == ["1"]
    wave2 = a.wave_of("3")
    assert sorted(wave2.tasks) == ["2", "3", "4"] and len(wave2.groups) == 1
    group = a.group_of("3")
    assert group.name == "2+3+4" and group.after["3"] == ["2", "4"]  # 2 and 4 together, then 3
    assert [(p.tasks, p.resolution) for p in a.serialization_points] == [
        (["2", "3"], "same group"),
        (["3", "4"], "same group"),
    ]
    assert a.serialization_points[0].reason == "both write src/git-workflow-enforcer.ts"
    assert a.conflicts_of("3") == {"2", "4"} and a.conflicts_of("1") == set()


def test_billing_example() -> None:
    a = analyze(load_plan(EXAMPLES / "billing.yaml"))
    exporters = a.group_of("csv")
    assert exporters.name == "exporters" and exporters.tasks == ["csv", "json"]
    assert exporters.after == {"csv": [], "json": ["csv"]}
    gate = a.group_of("checks")
    assert gate.gate and gate.tasks == ["checks"] and a.wave_of("checks").index == len(a.waves)
    reasons = {tuple(p.tasks): p.reason for p in a.serialization_points}
    assert reasons[("csv", "json")] == "both write src/billing/export.py"
    assert a.warnings == []
    e = a.estimates
    assert e.theoretical <= e.practical <= e.serial


def test_independent_conflicting_tasks_share_a_group() -> None:
    plan = make_plan(
        {"id": "csv", "files": ["src/export.py"], "estimate": 10},
        {"id": "json", "files": ["src/export.py"], "estimate": 10},
        {"id": "docs", "files": ["docs/"], "estimate": 10},
    )
    a = analyze(plan)
    assert a.to_json()["serialization_points"] == [
        {"tasks": ["csv", "json"], "reason": "both write src/export.py", "resolution": "same group"}
    ]
    assert a.group_of("json").name == "csv+json" and a.group_of("json").after["json"] == ["csv"]
    assert estimates(a) == {"serial": 30, "groups_sequential": 30, "theoretical": 10, "practical": 20}


def test_moving_to_a_later_wave_when_it_is_free() -> None:
    # short a/b conflict in wave 1; wave 2 holds a long task that does not need b: b fits beside it.
    plan = make_plan(
        {"id": "a", "files": ["x.py"], "estimate": 10},
        {"id": "b", "files": ["x.py"], "estimate": 10},
        {"id": "long", "files": ["y.py"], "depends_on": ["a"], "estimate": 60},
    )
    a = analyze(plan)
    point = a.serialization_points[0]
    assert point.resolution == "later wave" and point.moved == "b"
    assert a.wave_of("b").index == 2 and a.wave_of("long").index == 2
    assert estimates(a)["practical"] == 70  # merging would give 20 + 60


def test_gates_are_never_merged() -> None:
    plan = make_plan(
        {"id": "srv", "files": ["srv.py"], "resources": ["port:8080"], "estimate": 5},
        {"id": "it", "kind": "gate", "command": "pytest", "resources": ["port:8080"]},
    )
    a = analyze(plan)
    assert a.group_of("it").gate and a.group_of("it").tasks == ["it"]
    assert a.wave_of("it").index != a.wave_of("srv").index
    assert a.serialization_points[0].resolution == "later wave"
    assert a.warnings == []  # a gate without files is not worth a warning


def test_conflicts_inside_an_explicit_group_are_ordered() -> None:
    plan = make_plan(
        {"id": "a", "files": ["m.py"], "group": "api", "estimate": 5},
        {"id": "b", "files": ["m.py"], "group": "api", "estimate": 5},
        {"id": "c", "files": ["n.py"], "group": "api", "estimate": 5},
    )
    a = analyze(plan)
    group = a.group_of("a")
    assert group.name == "api" and group.after == {"a": [], "b": ["a"], "c": []}
    assert estimates(a)["practical"] == 10


def test_explicit_group_with_a_chain_stays_in_one_wave() -> None:
    plan = make_plan(
        {"id": "s", "group": "be", "files": ["s.py"]},
        {"id": "t", "group": "be", "depends_on": ["s"], "files": ["t.py"]},
        {"id": "u", "depends_on": ["t"], "files": ["u.py"]},
    )
    a = analyze(plan)
    assert shape(a) == [[("be", ["s", "t"])], [("u", ["u"])]]
    assert a.group_of("t").after["t"] == ["s"]


def test_group_names_are_unique_short_and_ref_safe() -> None:
    long_ids = [f"task-with-a-long-name-{i}" for i in range(4)]
    plan = make_plan(
        *({"id": t, "files": ["shared.py"]} for t in long_ids),
        {"id": "api", "files": ["a.py"]},
        {"id": "x", "group": "api", "files": ["b.py"]},
    )
    a = analyze(plan)
    names = [g.name for w in a.waves for g in w.groups]
    assert len(names) == len(set(names))
    assert "api" in names and a.group_of("x").name == "api" and a.group_of("api").name != "api"
    merged = a.group_of(long_ids[0]).name
    assert len(merged) <= 40 and re.fullmatch(r"[A-Za-z0-9_+][A-Za-z0-9_.+-]*", merged)
    assert analyze(plan).group_of(long_ids[0]).name == merged  # deterministic
    for name in names:
        assert ref_safe_problem(name, "group name") is None


def test_json_shape() -> None:
    data = analyze(load_plan(EXAMPLES / "example1.pipeline")).to_json()
    assert {"waves", "critical_path", "estimates", "serialization_points", "warnings"} <= set(data)
    assert data["waves"][1]["index"] == 2
    assert data["waves"][1]["groups"][0]["name"] == "backend"
    assert data["waves"][1]["groups"][0]["tasks"] == ["2", "3"]
    assert all(isinstance(v, int) for v in data["estimates"].values())
    fractional = analyze(make_plan({"id": "a", "estimate": 2.5})).to_json()["estimates"]
    assert fractional["serial"] == 2.5


def test_schedule_is_exposed() -> None:
    a = analyze(load_plan(EXAMPLES / "example1.pipeline"))
    assert a.schedule["1"] == (0, 10) and a.schedule["9"] == (80, 90)
