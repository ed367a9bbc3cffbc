"""End-to-end: a group's worktree is reused by the next wave's group, switched by changing only what differs
when the executor knows it is clean, and nothing of the earlier group is carried over either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import git, latest_state, tree_files, write_yaml


@pytest.mark.parametrize("first_runs_a_command", [False, True])
def test_next_wave_reuses_the_worktree_and_sees_only_its_base(
    make_repo, run_cli, tmp_path: Path, first_runs_a_command: bool
) -> None:
    repo = make_repo({"README.md": "# r\n", "old.txt": "old\n"})
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "tasks": [
                {"id": "a", "title": "A", "files": ["a.py", "gen.txt"]},
                {"id": "b", "title": "B", "files": ["b.py"], "depends_on": ["a"]},
            ]
        },
    )
    first = [{"tool": "write_file", "input": {"path": "a.py", "content": "A = 1\n"}}]
    if first_runs_a_command:  # a file no tool recorded: the commit must scan the worktree to find it
        first.append({"tool": "run", "input": {"command": "echo generated > gen.txt && rm old.txt"}})
    script = write_yaml(
        tmp_path / "script.yaml",
        {
            "tasks": {
                "a": [*first, {"tool": "finish", "input": {"summary": "a done"}}],
                "b": [
                    {"tool": "write_file", "input": {"path": "b.py", "content": "B = 1\n"}},
                    {"tool": "finish", "input": {"summary": "b done"}},
                ],
            }
        },
    )
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", script,
                  "--max-agents", "1", "--sandbox", "none")  # fmt: skip
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    groups = {g["name"]: g for w in state["waves"] for g in w["groups"]}
    a, b = groups["a"], groups["b"]
    expected_a = {"a.py", "gen.txt", "old.txt"} if first_runs_a_command else {"a.py"}
    assert set(git(repo, "diff", "--name-only", a["base"], a["head"]).split()) == expected_a
    # b's branch holds exactly its base (wave 1's commit) plus b.py: nothing of a's worktree leaked
    assert git(repo, "diff", "--name-only", b["base"], b["head"]) == "b.py"
    assert b["base"] == state["waves"][0]["commit"]
    final = tree_files(repo, state["branch"])
    assert set(final) == {"README.md", "a.py", "b.py"} | (
        {"gen.txt"} if first_runs_a_command else {"old.txt"}
    )
    # one worktree served both groups (one agent), and a's clean release let b's acquire switch it with
    # read-tree + update-ref ("agentwaves: acquire") instead of reset --hard
    reflog = git(repo, "reflog", "show", "--format=%gs", f"refs/heads/{b['branch']}")
    assert "agentwaves: acquire" in reflog and "reset: moving" not in reflog


@pytest.mark.parametrize("setup", [False, True], ids=["no-setup", "setup"])
def test_one_agent_s_groups_of_a_wave_take_turns_with_at_most_two_worktrees(
    make_repo, run_cli, tmp_path: Path, setup: bool
) -> None:
    """With one agent, a group's worktree goes back to the pool before the next group after it is
    started, so groups take turns rather than check out the repository anew. The next group's agent
    may start while the last one's commit is made: that group gets one more worktree (made once; the
    two then take turns), unless a setup command is configured, which each new worktree would run again:
    then the next group waits for the one worktree."""
    files = {"README.md": "# r\n"}
    if setup:
        files["agentwaves.yaml"] = "setup: echo set >> .setup-runs\n"
    repo = make_repo(files)
    tasks = [{"id": t, "title": t.upper(), "files": [f"{t}.py"]} for t in ("a", "b", "c", "d", "e")]
    plan = write_yaml(tmp_path / "plan.yaml", {"tasks": tasks})
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--max-agents", "1",
                  "--sandbox", "none")  # fmt: skip
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    (wave,) = state["waves"]
    assert [g["name"] for g in wave["groups"]] == ["a", "b", "c", "d", "e"]
    made = [  # checked out anew; the others were moved and switched by read-tree ("agentwaves: acquire")
        g["name"]
        for g in wave["groups"]
        if "agentwaves: acquire"
        not in git(repo, "reflog", "show", "--format=%gs", f"refs/heads/{g['branch']}")
    ]
    if setup:
        assert made == ["a"], made
    else:
        assert made[0] == "a" and len(made) <= 2, made


@pytest.mark.parametrize("extras", ["", "copy_files: [.env]\n", "setup: echo set > .setup-made\n"])
def test_a_task_in_a_worktree_that_is_exactly_its_head_takes_no_baseline(
    make_repo, run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extras: str
) -> None:
    """What already differs from HEAD as a task starts is not its writes (the end-of-task lease check
    leaves it out). A worktree the pool made or switched, with no copied files and no setup, differs in
    nothing, nor does one whose last commit staged every change: no `git status` is taken for it. With
    copy_files or a setup command, it is taken for every task."""
    from agentwaves.run.leases import fallback

    repo = make_repo({"README.md": "# r\n", "agentwaves.yaml": extras or "{}\n"})
    (repo / ".env").write_text("X=1\n")
    tasks = [
        {"id": "a", "title": "A", "files": ["a.py"], "group": "g"},
        {"id": "b", "title": "B", "files": ["b.py"], "group": "g", "depends_on": ["a"]},
        {"id": "c", "title": "C", "files": ["c.py"]},
    ]
    plan = write_yaml(tmp_path / "plan.yaml", {"tasks": tasks})
    taken: list[list[str]] = []
    real = fallback.baseline

    def baseline(worktree: Path) -> dict[str, object]:
        found = real(worktree)
        taken.append(sorted(found))
        return found

    monkeypatch.setattr(fallback, "baseline", baseline)
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--max-agents", "1",
                  "--sandbox", "none")  # fmt: skip
    assert res.exit_code == 0, res.stderr + res.stdout
    assert latest_state(repo)["state"] == "done"
    if not extras:
        assert taken == []
    else:
        made = ".env" if "copy_files" in extras else ".setup-made"
        assert taken == [[made]] * 3, taken
