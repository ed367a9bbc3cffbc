"""Damaged inputs (issue 14 item 8): a state.json that is not an object, torn or of an unknown version, an
edited plan snapshot, odd lines in events.jsonl. Each is one line naming the file and what to do, exit 2,
and never affects the other runs of the repository.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.reliability.support import Workspace, make_workspace, run_dirs
from tests.reliability.support import agentwaves_forked as agentwaves


def one_line(res: object, code: int, *needles: str) -> None:
    err = res.stderr.strip()  # type: ignore[attr-defined]
    assert res.returncode == code, err  # type: ignore[attr-defined]
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def two_runs(
    make_repo: Callable[..., Path], tmp_path: Path, gate_ok: bool = True
) -> tuple[Workspace, Path, Path]:
    ws = make_workspace(make_repo, tmp_path)
    plan = ws.plan([{"id": "a", "title": "A", "files": ["src/a.py"]}])
    for _ in range(2):
        res = agentwaves("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--sandbox", "none")
        assert res.returncode == 0, res.stderr
    bad, good = run_dirs(ws.repo)
    return ws, bad, good


@pytest.mark.parametrize(
    "content",
    [
        "[1, 2, 3]\n",
        '{"run_id": "x", "repo',
        json.dumps({"version": 7, "future_key": {"a": 1}}),
        "extra-key",
    ],
    ids=["list", "torn", "version-7", "extra-key"],
)
def test_a_damaged_state_is_one_line_and_never_affects_other_runs(
    make_repo: Callable[..., Path], tmp_path: Path, content: str
) -> None:
    ws, bad, good = two_runs(make_repo, tmp_path)
    path = bad / "state.json"
    if content == "extra-key":  # a valid state with a key this version does not know: not silently dropped
        data = json.loads(path.read_text())
        content = json.dumps({**data, "added_by_a_newer_version": [1]})
    path.write_text(content)
    repo = ("--repo", ws.repo)
    for cmd in ("status", "resume", "clean", "land", "review"):
        res = agentwaves(cmd, bad.name, *repo)
        one_line(res, 2, str(path))
    assert path.read_text() == content  # never rewritten (a key dropped) by any command
    runs = agentwaves("runs", "--json", *repo)
    assert runs.returncode == 0, runs.stderr
    states = {r["run"]: r["state"] for r in json.loads(runs.stdout)["runs"]}
    assert states == {bad.name: "unreadable", good.name: "done"}
    assert json.loads(agentwaves("status", "--json", good.name, *repo).stdout)["state"] == "done"
    res = agentwaves("clean", "--all", *repo)
    assert res.returncode == 0, res.stderr
    assert f"run {bad.name} skipped" in res.stderr and f"run {good.name}:" in res.stdout


def test_an_edited_plan_snapshot_is_one_line(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    ws = make_workspace(make_repo, tmp_path)
    flag = tmp_path / "ok"
    plan = ws.plan(
        [
            {"id": "a", "title": "A", "files": ["src/a.py"]},
            {"id": "g", "title": "G", "kind": "gate", "command": f"test -e '{flag}'", "depends_on": ["a"]},
        ]
    )
    res = agentwaves("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--sandbox", "none")
    assert res.returncode == 1
    run = run_dirs(ws.repo)[-1]
    snapshot = run / "plan.yaml"
    edited = yaml.safe_load(snapshot.read_text())
    edited["tasks"].append({"id": "z", "title": "Z", "files": ["src/z.py"]})  # valid, but not the run's
    snapshot.write_text(yaml.safe_dump(edited))
    flag.touch()
    one_line(agentwaves("resume", "--repo", ws.repo), 2, str(snapshot), "restore the plan")
    assert json.loads((run / "state.json").read_text())["state"] == "failed"


def test_odd_event_lines_are_skipped_and_a_torn_line_never_swallows_the_next(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    flag = tmp_path / "ok"
    plan = ws.plan(
        [
            {"id": "a", "title": "A", "files": ["src/a.py"]},
            {"id": "g", "title": "G", "kind": "gate", "command": f"test -e '{flag}'", "depends_on": ["a"]},
        ]
    )
    res = agentwaves("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--sandbox", "none")
    assert res.returncode == 1
    run = run_dirs(ws.repo)[-1]
    log = run / "events.jsonl"
    with log.open("a") as fh:
        fh.write('[1, 2]\n"text"\n{"ts": "2026-01-01T00:00:00Z", "type": "tas')  # a crash mid-write
    for cmd in ("status", "report", "review"):
        res = agentwaves(cmd, "--repo", ws.repo)
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    flag.touch()
    res = agentwaves("resume", "--repo", ws.repo)
    assert res.returncode == 0, res.stderr
    lines = log.read_text().splitlines()
    torn = lines.index('{"ts": "2026-01-01T00:00:00Z", "type": "tas')  # still on a line of its own
    after = [json.loads(line) for line in lines[torn + 1 :]]
    assert after[0]["type"] == "run_started" and after[-1]["type"] == "run_finished"
