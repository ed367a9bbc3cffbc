"""The user's files and worktrees (issue 14 items 1 and 2, issue 12 item 4).

`land` never replaces a file git does not track (untracked or ignored, like `.env`) or a tracked file with
uncommitted changes, names what is in the way, and is not blocked by anything else; a run can never add
anything under `.agentwaves/`; and agentwaves never forgets a worktree of the user's that is briefly absent.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from tests.e2e.helpers import git, latest_state, tree_files
from tests.reliability.support import Fingerprint, make_workspace, tool_results
from tests.reliability.support import agentwaves_forked as agentwaves


def test_land_never_overwrites_ignored_or_untracked_files_and_a_run_adds_nothing_under_agentwaves(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path, files={".gitignore": "ignored.log\n.env\n"})
    (ws.repo / ".env").write_text("DB_PASSWORD=hunter2\n")
    script = ws.script(
        {
            "tasks": {
                "a": [
                    {"tool": "write_file", "input": {"path": ".gitignore", "content": "ignored.log\n"}},
                    {"tool": "write_file", "input": {"path": ".env", "content": "DB_PASSWORD=agent\n"}},
                    {"tool": "write_file", "input": {"path": "notes.txt", "content": "agent notes\n"}},
                    {"tool": "write_file", "input": {"path": ".agentwaves/plan.yaml", "content": "x: 1\n"}},
                    {"tool": "write_file", "input": {"path": ".AgentWaves/gate.yaml", "content": "x\n"}},
                    {
                        "tool": "run",
                        "input": {"command": "mkdir -p .agentwaves && echo evil > .agentwaves/p"},
                    },
                    {"tool": "write_file", "input": {"path": "src/a.py", "content": "A = 1\n"}},
                    {"tool": "finish", "input": {"summary": "a"}},
                ]
            }
        }
    )
    plan = ws.plan([{"id": "a", "title": "A", "files": ["src/a.py"]}])
    res = agentwaves(
        "execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--fake-script", script,
        "--sandbox", "none",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    refused = [
        r for r in tool_results(ws.repo, "a") if r["input"].get("path", "").lower().startswith(".agentw")
    ]
    assert len(refused) == 2 and all(r["is_error"] and "agentwaves' own" in r["result"] for r in refused)
    state = latest_state(ws.repo)
    files = tree_files(ws.repo, state["branch"])
    assert {".env", "notes.txt", "src/a.py"} <= set(files)
    assert not [p for p in files if p.lower().startswith(".agentwaves")], "the run added .agentwaves/ files"
    group_files = git(ws.repo, "ls-tree", "-r", "--name-only", state["waves"][0]["groups"][0]["branch"])
    assert ".agentwaves/p" not in group_files.splitlines()
    before = Fingerprint.take(ws)
    res = agentwaves("land", "--repo", ws.repo)
    assert res.returncode == 1
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "would overwrite files in your working tree: .env (ignored), notes.txt (untracked)" in err
    before.assert_unchanged(ws)
    assert (ws.repo / ".env").read_text() == "DB_PASSWORD=hunter2\n"
    # once the user moved them away, it lands; the staged README edit and ignored.log are kept
    shutil.move(ws.repo / ".env", tmp_path / "env.bak")
    (ws.repo / "notes.txt").unlink()
    res = agentwaves("land", "--repo", ws.repo)
    assert res.returncode == 0, res.stderr
    assert (ws.repo / ".env").read_text() == "DB_PASSWORD=agent\n"
    assert (ws.repo / "ignored.log").read_text() == "ignored\n"
    assert "README.md" in git(ws.repo, "diff", "--cached", "--name-only")


def test_land_is_not_blocked_by_unrelated_changes(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    """Issue 12 item 4: untracked notes.txt, ignored.log, a staged README edit and an agentwaves.yaml the
    run does not touch: `land` fast-forwards and keeps every one of them."""
    ws = make_workspace(make_repo, tmp_path)
    (ws.repo / "agentwaves.local.yaml").write_text("max_agents: 2\n")
    plan = ws.plan([{"id": "a", "title": "A", "files": ["src/a.py"]}])
    res = agentwaves("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--sandbox", "none")
    assert res.returncode == 0, res.stderr
    state = latest_state(ws.repo)
    res = agentwaves("land", "--repo", ws.repo)
    assert res.returncode == 0, res.stderr
    assert git(ws.repo, "rev-parse", "main") == git(ws.repo, "rev-parse", state["branch"])
    assert (ws.repo / "notes.txt").read_text() == "untracked notes\n"
    assert (ws.repo / "ignored.log").read_text() == "ignored\n"
    assert (ws.repo / "agentwaves.local.yaml").read_text() == "max_agents: 2\n"
    assert (ws.repo / "README.md").read_text() == "# demo\nstaged edit\n"
    assert git(ws.repo, "diff", "--cached", "--name-only") == "README.md"


def test_a_briefly_absent_user_worktree_is_never_pruned(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    mine = tmp_path / "drive" / "feature-wt"
    git(ws.repo, "worktree", "add", "-q", "-b", "feature", str(mine))
    (mine / "work.txt").write_text("staged work\n")
    git(mine, "add", "work.txt")
    away = tmp_path / "drive-unplugged"
    shutil.move(tmp_path / "drive", away)  # the drive is unplugged
    plan = ws.plan([{"id": "a", "title": "A", "files": ["src/a.py"]}])
    res = agentwaves("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--sandbox", "none")
    assert res.returncode == 0, res.stderr
    assert agentwaves("clean", "--repo", ws.repo).returncode == 0
    shutil.move(away, tmp_path / "drive")  # and plugged in again
    assert git(mine, "diff", "--cached", "--name-only") == "work.txt"
    assert git(mine, "symbolic-ref", "--short", "HEAD") == "feature"
    listed = git(ws.repo, "worktree", "list", "--porcelain")
    assert f"worktree {mine.resolve()}" in listed
