"""Eager scheduling: dependent tasks start before their wave's barrier, waves still commit in order."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tests.e2e.helpers import (
    git,
    latest_state,
    shared_file_calls,
    tree_files,
    user_snapshot,
    wave_commits,
    write_yaml,
)

PLAN = {
    "feature": "eager",
    "tasks": [
        {"id": "a", "title": "A", "files": ["pkg/a.py"], "estimate": 1},
        {"id": "b", "title": "B", "files": ["pkg/b.py"], "estimate": 40},
        {"id": "c", "title": "C", "files": ["pkg/c.py", "pkg/a.py"], "depends_on": ["a"], "estimate": 1},
        {"id": "d", "title": "D", "files": ["pkg/d.py"], "depends_on": ["c"], "estimate": 1},
        {"id": "e", "title": "E", "files": ["pkg/e.py", "pkg/b.py"], "depends_on": ["b"], "estimate": 1},
    ],
}


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _run(make_repo, run_cli, tmp_path: Path, name: str, *args: str) -> tuple[Path, dict]:
    repo = make_repo({"README.md": "# r\n", "pkg/__init__.py": ""}, name=name)
    plan = write_yaml(tmp_path / f"{name}.yaml", PLAN)
    before = user_snapshot(repo)
    res = run_cli(
        "execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-time-scale", "0.05", *args
    )
    assert res.exit_code == 0, res.stderr + res.stdout
    assert user_snapshot(repo) == before
    return repo, latest_state(repo)


def test_eager_starts_dependents_early_and_matches_waves_tree(make_repo, run_cli, tmp_path) -> None:
    repo_w, state_w = _run(make_repo, run_cli, tmp_path, "w", "--waves")
    repo_e, state_e = _run(make_repo, run_cli, tmp_path, "e", "--schedule", "eager")
    tasks = {t["id"]: t for w in state_e["waves"] for g in w["groups"] for t in g["tasks"]}
    # c (wave 2) and d (wave 3) start before b (wave 1) finishes
    assert _ts(tasks["c"]["started"]) < _ts(tasks["b"]["finished"])
    assert _ts(tasks["d"]["started"]) < _ts(tasks["b"]["finished"])
    # the same final tree as --waves, and one commit per wave in order with the same subjects
    assert tree_files(repo_e, state_e["branch"]) == tree_files(repo_w, state_w["branch"])
    subjects_e = [s for s, _ in wave_commits(repo_e, state_e)]
    subjects_w = [s for s, _ in wave_commits(repo_w, state_w)]
    assert subjects_e == subjects_w
    assert [s.split()[2] for s in subjects_e] == ["1", "2", "3"]
    # c built on a's work: its file has a's block before its own
    a_text = git(repo_e, "show", f"{state_e['branch']}:pkg/a.py")
    assert a_text.index('return "a"') < a_text.index('return "c"')


def test_group_on_conflicting_finished_groups_starts_on_what_it_needs(make_repo, run_cli, tmp_path) -> None:
    """x and y (wave 1) both write shared.txt outside their declared files, so the finished groups of wave 1
    do not merge; z (wave 2, after x only) still starts before wave 1 is committed, on the head plus x.
    The wave-1 conflict goes to the resolver as with --waves, and the final tree is the same."""
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "feature": "stacked conflict",
            "tasks": [
                {"id": "x", "title": "X", "files": ["x.py"], "estimate": 6},
                {"id": "y", "title": "Y", "files": ["y.py"], "estimate": 1},
                {"id": "slow", "title": "Slow", "files": ["slow.py"], "estimate": 30},
                {"id": "z", "title": "Z", "files": ["z.py"], "depends_on": ["x"], "estimate": 1},
            ],
        },
    )
    writes = shared_file_calls()
    script = write_yaml(tmp_path / "s.yaml", {"tasks": writes})
    trees, states, repos = {}, {}, {}
    for schedule in ("waves", "eager"):
        repo = make_repo({"README.md": "# r\n", "shared.txt": "top\n"}, name=schedule)
        res = run_cli(
            "execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", script,
            "--fake-time-scale", "0.05", "--schedule", schedule,
        )  # fmt: skip
        assert res.exit_code == 0, res.stderr + res.stdout
        states[schedule], repos[schedule] = latest_state(repo), repo
        trees[schedule] = tree_files(repo, states[schedule]["branch"])
    assert trees["eager"] == trees["waves"]
    repo, state = repos["eager"], states["eager"]
    text = git(repo, "show", f"{state['branch']}:shared.txt")
    assert "from x" in text and "from y" in text and "<<<<<<<" not in text
    tasks = {t["id"]: t for w in state["waves"] for g in w["groups"] for t in g["tasks"]}
    assert _ts(tasks["z"]["started"]) < _ts(tasks["slow"]["finished"])  # before wave 1 was committed
    # y had finished when z opened, but z's base holds x only: the fallback, not the conflicting chain
    assert _ts(tasks["y"]["finished"]) < _ts(tasks["z"]["started"])
    z_group = next(g for w in state["waves"] for g in w["groups"] if g["tasks"][0]["id"] == "z")
    base_files = git(repo, "ls-tree", "-r", "--name-only", z_group["base"]).split()
    assert "x.py" in base_files and "y.py" not in base_files
