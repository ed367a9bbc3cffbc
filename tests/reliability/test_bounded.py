"""Whatever agents write, handoffs and state stay bounded (issue 14 item 9).

One agent's command writes 20,000 small files (a quick stand-in for a million) and a file whose name is not
UTF-8; another a directory path longer than the OS limit. The run still finishes `done` (not "interrupted",
not an internal serialization error), every file is committed, and the dependent task's prompt,
`state.json` and `events.jsonl` stay small: handoffs name at most 200 files and count the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.e2e.helpers import git, latest_state
from tests.reliability.support import agentwaves_forked as agentwaves
from tests.reliability.support import make_workspace, run_dirs, tasks_of, transcript

FILES = 20_000
MANY = f"mkdir -p many && cd many && seq {FILES} | xargs touch && cd .."
NOT_UTF8 = "printf 'x' > \"$(printf 'caf\\351.txt')\""  # café.txt in Latin-1
DEEP = "d=$(printf 'd%.0s' $(seq 200)); p=deep; for i in $(seq 25); do p=$p/$d; done; mkdir -p $p; true"


def test_a_flood_of_files_keeps_prompts_and_state_bounded(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    script = ws.script(
        {
            "tasks": {
                "a": [
                    {"tool": "run", "input": {"command": f"{MANY} && {NOT_UTF8}", "timeout": 120}},
                    {"tool": "write_file", "input": {"path": "src/a.py", "content": "A = 1\n"}},
                    {"tool": "finish", "input": {"summary": "a: " + "long summary " * 2000}},
                ]
            }
        }
    )
    plan = ws.plan(
        [
            {"id": "a", "title": "A", "files": ["src/a.py"]},
            {"id": "b", "title": "B", "files": ["src/b.py"], "depends_on": ["a"]},
        ]
    )
    res = agentwaves(
        "execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--fake-script", script,
        "--sandbox", "none",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    assert json.loads(agentwaves("status", "--json", "--repo", ws.repo).stdout)["state"] == "done"
    a = tasks_of(state)["a"]
    assert a["handoff"]["files_total"] >= FILES + 2
    assert len(a["handoff"]["files"]) == 200 and len(a["files_written"]) == 200
    assert a["undeclared_total"] >= FILES + 1 and len(a["undeclared"]) == 200
    # every file is committed, the non-UTF-8 name byte for byte
    names = git(ws.repo, "ls-tree", "-r", "--name-only", a["commit"]).splitlines()
    assert sum(n.startswith("many/") for n in names) == FILES
    assert '"caf\\351.txt"' in names  # git quotes the byte it cannot show
    # bounded: the dependent task's prompt, the state file, the event log
    prompt = next(r["data"] for r in transcript(ws.repo, "b") if r["kind"] == "user")
    assert len(prompt) < 20_000 and f"(and {a['handoff']['files_total'] - 200} more)" in prompt
    run = run_dirs(ws.repo)[-1]
    assert (run / "state.json").stat().st_size < 200_000
    assert (run / "events.jsonl").stat().st_size < 200_000
    res = agentwaves("resume", "--repo", ws.repo)
    assert res.returncode == 0 and "already done" in res.stderr, res.stderr


def test_a_path_longer_than_the_os_limit_never_leaves_a_finished_run_interrupted(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """git cannot remove the worktree afterwards (`File name too long`): the run is still recorded done,
    the clean-up failure is a warning, and the run's work is on its branch."""
    ws = make_workspace(make_repo, tmp_path)
    script = ws.script(
        {
            "tasks": {
                "a": [
                    {"tool": "run", "input": {"command": DEEP, "timeout": 60}},
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
    assert "Traceback" not in res.stderr
    state = latest_state(ws.repo)
    assert state["state"] == "done" and state["error"] is None
    assert json.loads(agentwaves("status", "--json", "--repo", ws.repo).stdout)["state"] == "done"
    assert git(ws.repo, "show", f"{state['branch']}:src/a.py") == "A = 1"
