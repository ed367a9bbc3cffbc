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


def test_one_agent_s_groups_of_a_wave_take_turns_with_one_worktree(
    make_repo, run_cli, tmp_path: Path
) -> None:
    """With one agent, each group after the first gets the worktree the previous one gave back (released
    to the pool before the next group is started), rather than a new checkout of the repository."""
    repo = make_repo({"README.md": "# r\n"})
    tasks = [{"id": t, "title": t.upper(), "files": [f"{t}.py"]} for t in ("a", "b", "c", "d")]
    plan = write_yaml(tmp_path / "plan.yaml", {"tasks": tasks})
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--max-agents", "1",
                  "--sandbox", "none")  # fmt: skip
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    (wave,) = state["waves"]
    assert len(wave["groups"]) == 4
    acquired = [
        g["name"]
        for g in wave["groups"]
        if "agentwaves: acquire" in git(repo, "reflog", "show", "--format=%gs", f"refs/heads/{g['branch']}")
    ]
    assert len(acquired) == 3, acquired  # moved and switched by read-tree, not checked out anew
