"""Feedback loops end to end (fake model, real git, real bubblewrap): culprits, repairs, baseline, revise."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.e2e.feedback_helpers import group_of_task, groups_of, script, three_groups_plan, write
from tests.e2e.helpers import git, latest_state, tree_files, wave_commits, write_yaml

RUN = ("--llm", "fake", "--sandbox", "bwrap")


@pytest.mark.parametrize("agents", ["4", "1"])  # 1: more groups than agents, so the search bisects
def test_culprit_is_held_out_and_the_others_committed(make_repo, run_cli, tmp_path, agents: str) -> None:
    repo = make_repo()
    plan = three_groups_plan(tmp_path, repair_attempts=0)
    res = run_cli("execute", "--repo", repo, "--plan", plan, *RUN, "--max-agents", agents,
                  "--fake-script", script(tmp_path))  # fmt: skip
    assert res.exit_code == 1
    state = latest_state(repo)
    wave1 = state["waves"][0]
    assert wave1["state"] == "done" and wave1["held"] == [group_of_task(state, "c")["name"]]
    files = tree_files(repo, state["branch"])
    assert "a.py" in files and "b.py" in files and "c.py" not in files
    culprit = group_of_task(state, "c")
    assert culprit["state"] == "failed"
    assert "broke gate check" in culprit["error"] and "BROKEN found" in culprit["error"]
    assert all(group_of_task(state, t)["state"] == "done" for t in ("a", "b"))
    gate = group_of_task(state, "check")["tasks"][0]
    assert gate["state"] == "pending"  # waits for the held-back group
    # the first wave commit (with c) stays reachable under a history ref
    refs = [r for h in state["history"] for r in h["refs"]]
    assert refs and git(repo, "show", f"{refs[0]}:c.py") == "BROKEN = 1"
    assert culprit["name"] in res.stderr
    status = json.loads(run_cli("status", "--repo", repo, "--json").stdout)
    held = next(g for w in status["waves"] for g in w["groups"] if g["name"] == culprit["name"])
    assert held["held"] is True and "broke gate check" in held["error"]
    events = (repo / ".agentwaves" / "runs" / state["run_id"] / "events.jsonl").read_text().splitlines()
    tested = [json.loads(e)["groups"] for e in events if '"culprit_test"' in e]
    if agents == "1":
        assert ["b", "c"] in tested  # a half, then its members
    else:
        assert all(len(t) == 1 for t in tested[:3])


def test_repair_that_works_joins_the_wave(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo()
    plan = three_groups_plan(tmp_path)
    fix = {"repairs": {"c": [write("c.py", "c = 'fixed'\n", "fixed")]}}
    res = run_cli("execute", "--repo", repo, "--plan", plan, *RUN, "--fake-script", script(tmp_path, **fix))
    assert res.exit_code == 0, res.stderr
    state = latest_state(repo)
    assert state["state"] == "done"
    assert git(repo, "show", f"{state['branch']}:c.py") == "c = 'fixed'"
    culprit = group_of_task(state, "c")
    assert [(r["attempt"], r["passed"]) for r in culprit["repairs"]] == [(1, True)]
    assert "BROKEN found" in culprit["repairs"][0]["output"] and culprit["repairs"][0]["cost_usd"] > 0
    assert [s.split()[2] for s, _ in wave_commits(repo, state)] == ["1", "2"]
    review = json.loads(run_cli("review", "--repo", repo, "--json").stdout)
    assert review["waves"][0]["repairs"][0]["group"] == culprit["name"]
    status = json.loads(run_cli("status", "--repo", repo, "--json").stdout)
    g = next(g for w in status["waves"] for g in w["groups"] if g["name"] == culprit["name"])
    assert g["repairs"][0]["passed"] is True
    report = (repo / ".agentwaves" / "runs" / state["run_id"] / "report.md").read_text()
    assert "Repairs" in report and culprit["name"] in report


def test_repair_that_fails_then_resume_retries(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo()
    plan = three_groups_plan(tmp_path, repair_attempts=2)
    bad = {"repairs": {"c": [write("c.py", "BROKEN = 2\n"), write("c.py", "BROKEN = 3\n")]}}
    res = run_cli("execute", "--repo", repo, "--plan", plan, *RUN, "--fake-script", script(tmp_path, **bad))
    assert res.exit_code == 1
    state = latest_state(repo)
    culprit = group_of_task(state, "c")
    assert [(r["attempt"], r["passed"]) for r in culprit["repairs"]] == [(1, False), (2, False)]
    assert culprit["state"] == "failed" and "c.py" not in tree_files(repo, state["branch"])
    # resumable: the held group is merged again, found again, and this time repaired
    good = {"repairs": {"c": [write("c.py", "c = 'ok'\n")]}}
    res = run_cli("resume", "--repo", repo, "--fake-script", script(tmp_path, "good.yaml", **good))
    assert res.exit_code == 0, res.stderr
    state = latest_state(repo)
    assert state["state"] == "done" and git(repo, "show", f"{state['branch']}:c.py") == "c = 'ok'"


def test_combination_failure_blames_no_group(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo()
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "tasks": [
                {"id": "a", "title": "A", "files": ["a.py"]},
                {"id": "b", "title": "B", "files": ["b.py"]},
                {"id": "check", "title": "Check", "kind": "gate", "depends_on": ["a", "b"],
                 "command": "if test -e a.py && test -e b.py; then echo together; exit 1; fi"},
            ]
        },
    )  # fmt: skip
    res = run_cli("execute", "--repo", repo, "--plan", plan, *RUN)
    assert res.exit_code == 1
    state = latest_state(repo)
    gate = group_of_task(state, "check")["tasks"][0]
    assert gate["state"] == "failed"
    assert "no single group of wave 1 is to blame" in gate["error"] and "combination" in gate["error"]
    assert all(g["state"] == "done" for g in groups_of(state).values() if g["name"] != "check"
               and g["tasks"][0]["kind"] != "gate")  # fmt: skip
    assert {"a.py", "b.py"} <= set(tree_files(repo, state["branch"]))
    assert state["waves"][0]["held"] == []


@pytest.mark.parametrize("new_failure", [False, True])
def test_baseline_junit_counts_only_new_failures(make_repo, run_cli, tmp_path, new_failure: bool) -> None:
    repo = make_repo(
        {
            "tests/test_old.py": "def test_old_broken():\n    assert False\n\ndef test_ok():\n    pass\n",
            "README.md": "# r\n",
        }
    )
    body = "def test_new():\n    assert False\n" if new_failure else "def test_new():\n    pass\n"
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "tasks": [
                {"id": "a", "title": "A", "files": ["tests/test_new.py"]},
                {"id": "check", "title": "Check", "kind": "gate", "depends_on": ["a"],
                 "command": f"{sys.executable} -m pytest -q -p no:cacheprovider tests", "repair_attempts": 0},
            ]
        },
    )  # fmt: skip
    s = write_yaml(tmp_path / "s.yaml", {"tasks": {"a": write("tests/test_new.py", body)}})
    res = run_cli("execute", "--repo", repo, "--plan", plan, *RUN, "--fake-script", s)
    state = latest_state(repo)
    base = state["baseline"]["check"]
    assert base["passed"] is False and base["junit"] is True
    assert base["failing"] == ["tests.test_old::test_old_broken"]
    assert "gate check already fails on the base" in res.stderr
    gate = group_of_task(state, "check")["tasks"][0]
    if new_failure:  # the one group of the wave is the culprit: it fails a test that passed on the base
        culprit = group_of_task(state, "a")
        assert res.exit_code == 1 and gate["state"] == "pending" and culprit["state"] == "failed"
        assert "new failing tests: tests.test_new::test_new" in culprit["error"]
    else:
        assert res.exit_code == 0, res.stderr + gate.get("error", "")
        assert gate["state"] == "done"


REVISE_PLAN = {
    "tasks": [
        {"id": "a", "title": "A", "files": ["a.py"]},
        {"id": "b", "title": "B", "files": ["b.py"]},
        {"id": "c", "title": "C", "files": ["c.py"], "depends_on": ["a"]},
        {"id": "check", "title": "Check", "kind": "gate", "command": "test -e a.py", "depends_on": ["c"]},
        {"id": "d", "title": "D", "files": ["d.md"], "depends_on": ["check"]},
    ]
}


def _revise_script(tmp: Path, name: str, a: str, **extra: object) -> Path:
    tasks = {
        "a": write("a.py", a),
        "b": write("b.py", "b = 1\n"),
        "c": write("c.py", "c = 1\n"),
        "d": write("d.md", "# d\n"),
    }
    return write_yaml(tmp / name, {"tasks": tasks, **extra})


def test_revise_rebuilds_later_waves_like_a_run_planned_that_way(make_repo, run_cli, tmp_path) -> None:
    plan = write_yaml(tmp_path / "plan.yaml", REVISE_PLAN)
    # the reference: a run whose task a wrote the revised content in the first place
    ref_repo = make_repo(name="reference")
    script = _revise_script(tmp_path, "ref.yaml", "a = 2  # revised\n")
    res = run_cli("execute", "--repo", ref_repo, "--plan", plan, *RUN, "--fake-script", script)
    assert res.exit_code == 0, res.stderr
    reference = tree_files(ref_repo, latest_state(ref_repo)["branch"])

    repo = make_repo()
    revised = {"revisions": {"a": [write("a.py", "a = 2  # revised\n", "as asked")]}}
    script = _revise_script(tmp_path, "s.yaml", "a = 1\n", **revised)
    assert run_cli("execute", "--repo", repo, "--plan", plan, *RUN, "--fake-script", script).exit_code == 0
    before = latest_state(repo)
    assert len(before["waves"]) >= 3
    res = run_cli("revise", "--repo", repo, "--task", "a", "use 2, not 1")
    assert res.exit_code == 0, res.stderr
    state = latest_state(repo)
    assert state["state"] == "done"
    assert tree_files(repo, state["branch"]) == reference
    # every wave was committed again, the gate ran again, the old commits are kept and listed
    assert all(w["commit"] != old["commit"] for w, old in zip(state["waves"], before["waves"], strict=True))
    assert group_of_task(state, "check")["tasks"][0]["attempts"] == 2
    assert [s.split()[2] for s, _ in wave_commits(repo, state)] == [str(w["index"]) for w in state["waves"]]
    history = state["history"][0]["refs"]
    assert set(history.values()) >= {w["commit"] for w in before["waves"]}
    wave1 = next(r for r in history if r.endswith("/wave-1"))
    assert git(repo, "show", f"{wave1}:a.py") == "a = 1"
    review = json.loads(run_cli("review", "--repo", repo, "--json").stdout)
    task_a = next(t for w in review["waves"] for t in w["tasks"] if t["id"] == "a")
    assert [(r["comment"], r["state"]) for r in task_a["revisions"]] == [("use 2, not 1", "done")]
    assert review["history"][0]["refs"] == history
    text = run_cli("review", "--repo", repo).stdout
    assert "use 2, not 1" in text and "history" in text.lower()


def test_revise_bad_input_is_one_line_exit_2(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo()
    res = run_cli("revise", "--repo", repo, "--task", "a", "x")
    assert res.exit_code == 2 and "no runs yet" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    plan = write_yaml(tmp_path / "plan.yaml", {"tasks": [{"id": "a", "title": "A", "files": ["a.py"]}]})
    assert run_cli("execute", "--repo", repo, "--plan", plan, *RUN).exit_code == 0
    for args, said in (
        (("--task", "nope", "x"), "has no task 'nope'"),
        (("--wave", "9", "x"), "has no wave 9"),
        (("--task", "a", " "), "comment is empty"),
        (("x",), "give --task T or --wave N"),
    ):
        res = run_cli("revise", "--repo", repo, *args)
        assert res.exit_code == 2, (args, res.stderr)
        assert said in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert run_cli("land", "--repo", repo).exit_code == 0
    res = run_cli("revise", "--repo", repo, "--task", "a", "x")
    assert res.exit_code == 2 and "landed" in res.stderr and "Traceback" not in res.stderr


def test_clean_of_a_landed_run_drops_its_history_refs(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo()
    plan = three_groups_plan(tmp_path)
    fix = {"repairs": {"c": [write("c.py", "c = 2\n")]}}
    res = run_cli("execute", "--repo", repo, "--plan", plan, *RUN, "--fake-script", script(tmp_path, **fix))
    assert res.exit_code == 0, res.stderr
    rid = latest_state(repo)["run_id"]
    assert git(repo, "for-each-ref", f"refs/agentwaves/{rid}/")
    assert run_cli("land", "--repo", repo).exit_code == 0
    assert run_cli("clean", "--repo", repo).exit_code == 0
    assert git(repo, "for-each-ref", f"refs/agentwaves/{rid}/") == ""
