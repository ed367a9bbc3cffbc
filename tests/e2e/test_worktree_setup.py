"""Worktree set-up: copied untracked files, a setup command, and one AGENTWAVES_PORT per group."""

from __future__ import annotations

from tests.e2e.helpers import git, latest_state, tree_files, write_yaml


def test_copy_files_setup_and_ports(make_repo, run_cli, tmp_path) -> None:
    repo = make_repo(
        {
            "README.md": "# r\n",
            ".gitignore": "node_modules/\n",
            "agentwaves.yaml": "copy_files: [.env, node_modules/]\nsetup: echo ready > .setup-done\n",
        }
    )
    (repo / ".env").write_text("SECRET_SETTING=42\n")  # untracked, not ignored
    (repo / "node_modules" / "lib").mkdir(parents=True)
    (repo / "node_modules" / "lib" / "index.js").write_text("module.exports = 1\n")  # ignored
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {
            "tasks": [
                {"id": "a", "title": "A", "files": ["a.txt"]},
                {"id": "b", "title": "B", "files": ["b.txt"]},
            ]
        },
    )
    steps = {
        t: [
            {
                "tool": "run",
                "input": {
                    "command": f"cat .env node_modules/lib/index.js .setup-done > {t}.txt && "
                    f"echo port=$AGENTWAVES_PORT >> {t}.txt"
                },
            },
            {"tool": "finish", "input": {"summary": f"{t} done"}},
        ]
        for t in ("a", "b")
    }
    res = run_cli(
        "execute",
        "--repo",
        repo,
        "--plan",
        plan,
        "--llm",
        "fake",
        "--fake-script",
        write_yaml(tmp_path / "s.yaml", {"tasks": steps}),
    )
    assert res.exit_code == 0, res.stderr
    state = latest_state(repo)
    a = git(repo, "show", f"{state['branch']}:a.txt").splitlines()
    b = git(repo, "show", f"{state['branch']}:b.txt").splitlines()
    assert a[:3] == ["SECRET_SETTING=42", "module.exports = 1", "ready"]
    assert a[3].startswith("port=") and b[3].startswith("port=") and a[3] != b[3]
    files = tree_files(repo, state["branch"])
    # copied and set-up files are never committed
    assert ".env" not in files and ".setup-done" not in files
    assert not any(f.startswith("node_modules/") for f in files)
