"""Issue 12 ("a newcomer's first hour"): each item through the CLI, on real git repositories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.newcomer_support import Cli, _newest, _run_script, _two_task_plan, _write_and_finish
from tests.e2e.helpers import latest_state, write_yaml

MARKER = (
    "[big.py: 123 more characters not shown; use search or run (e.g. sed -n 'A,Bp' big.py) to read the rest]"
)


def _big_module(lines: int = 6000) -> str:
    return "".join(f"def f{i}() -> int:\n    return {i}\n\n\n" for i in range(lines // 4))


def _show(repo: Path, rev: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo, capture_output=True, text=True).stdout


def _log_records(repo: Path, task: str) -> list[dict[str, Any]]:
    runs = sorted((repo / ".agentwaves" / "runs").iterdir())
    text = (runs[-1] / "logs" / f"{task}.log").read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ------------------------------------------------------------------------------- item 2: large files


def test_fake_appends_to_a_file_too_long_to_read_whole(make_repo, run_cli: Cli, tmp_path: Path) -> None:
    original = _big_module()
    assert len(original) > 40_000  # longer than read_file shows
    repo = make_repo({"big.py": original})
    plan = write_yaml(
        tmp_path / "plan.yaml",
        {"feature": "f", "tasks": [{"id": "grow", "title": "Grow it", "files": ["big.py"]}]},
    )
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake")
    assert res.exit_code == 0, res.stderr + res.stdout
    tools = [r["data"] for r in _log_records(repo, "grow") if r["kind"] == "tool"]
    assert any("more characters not shown" in str(t.get("result")) for t in tools)  # the read was cut
    after = _show(repo, latest_state(repo)["branch"], "big.py")
    assert after.startswith(original)  # nothing of the original was lost
    assert "def grow_it() -> str:" in after[len(original) :]
    compile(after, "big.py", "exec")


def test_write_file_with_the_truncation_marker_is_refused(make_repo, run_cli: Cli, tmp_path: Path) -> None:
    original = _big_module()
    repo = make_repo({"big.py": original})
    plan = write_yaml(
        tmp_path / "plan.yaml", {"feature": "f", "tasks": [{"id": "w", "title": "W", "files": ["big.py"]}]}
    )
    script = write_yaml(
        tmp_path / "script.yaml",
        {
            "tasks": {
                "w": [
                    {
                        "tool": "write_file",
                        "input": {"path": "big.py", "content": "def f0():\n    return 0\n" + MARKER},
                    },
                    {"tool": "finish", "input": {"summary": "tried"}},
                ]
            }
        },
    )
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", script)
    tools = [r["data"] for r in _log_records(repo, "w") if r["kind"] == "tool"]
    write = next(t for t in tools if t["name"] == "write_file")
    assert write["is_error"] and "truncation marker" in write["result"]
    state = latest_state(repo)
    if res.exit_code == 0:
        assert _show(repo, state["branch"], "big.py") == original
    assert (repo / "big.py").read_text() == original


# ------------------------------------------------------------------------------ item 3: review --diff

LONG = "x = '" + "0123456789" * 30 + "'  # the end of a long line"


@pytest.fixture
def long_line_run(make_repo, run_cli: Cli, tmp_path: Path) -> Path:
    repo = make_repo()
    res = _run_script(repo, tmp_path, run_cli, {"a": _write_and_finish("a.py", LONG + "\n")})
    assert res.exit_code == 0, res.stderr + res.stdout
    return repo


def test_review_diff_piped_is_plain_and_unwrapped(long_line_run: Path, run_cli: Cli) -> None:
    res = run_cli("review", "--repo", long_line_run, "--diff")
    assert res.exit_code == 0, res.stderr
    assert f"+{LONG}\n" in res.stdout  # whole, on one line
    assert "\x1b[" not in res.stdout
    assert "diff --git a/a.py b/a.py\n" in res.stdout


def test_review_diff_on_a_terminal_wraps_long_lines(long_line_run: Path) -> None:
    import os
    import pty
    import re
    import sys

    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "70", "LINES": "40", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentwaves", "review", "--repo", str(long_line_run), "--diff"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode()).replace("\r", "")
    lines = text.splitlines()
    patch = lines[next(i for i, line in enumerate(lines) if line.startswith("diff --git")) :]
    assert max(len(line) for line in patch) <= 70
    assert LONG.replace(" ", "") in "".join(lines).replace(" ", "")  # wrapped, nothing cut


# ------------------------------------------------------------------------------ item 5: exit codes


def test_exit_codes_follow_the_readme(make_repo, run_cli: Cli, tmp_path: Path, monkeypatch) -> None:
    repo = make_repo()
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": [{"id": "a", "title": "A"}]})
    # a missing API key is bad input: 2, for plan and for execute
    for args in (("plan", "x", "--repo", repo), ("execute", "--repo", repo, "--plan", plan)):
        res = run_cli(*args)
        assert res.exit_code == 2, res.stderr
        assert (
            res.stderr.strip()
            == "agentwaves: error: ANTHROPIC_API_KEY is not set: export it, or use --llm fake"
        )
    # bad flags and bad plans: 2
    assert run_cli("execute", "--repo", repo, "--max-agents", "0").exit_code == 2
    assert run_cli("status", "--repo", repo, "--no-such-flag").exit_code == 2
    (tmp_path / "bad.yaml").write_text("tasks: [\n")
    assert run_cli("execute", "--repo", repo, "--plan", tmp_path / "bad.yaml", "--llm", "fake").exit_code == 2
    # a failed run: 1
    script = write_yaml(tmp_path / "s.yaml", {"faults": [{"task": "a", "error": "fatal"}]})
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", script)
    assert res.exit_code == 1, res.stderr
    # a missing program (git): 2, one line
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    res = run_cli("status", "--repo", repo)
    assert res.exit_code == 2
    assert res.stderr.strip().endswith("git is not installed") and len(res.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------ item 6: plan backups


def test_plan_keeps_the_previous_plans_newest_first(make_repo, run_cli: Cli) -> None:
    repo = make_repo({"src/app.py": "x = 1\n"})
    plan = repo / ".agentwaves" / "plan.yaml"
    res = run_cli("plan", "first feature", "--repo", repo, "--llm", "fake")
    assert res.exit_code == 0, res.stderr
    assert "previous plan" not in res.stdout
    plan.write_text(plan.read_text() + "# my hand edit\n")
    res = run_cli("plan", "second feature", "--repo", repo, "--llm", "fake")
    assert res.exit_code == 0, res.stderr
    assert "The previous plan was kept as" in res.stdout and "plan.yaml.1" in res.stdout
    assert (repo / ".agentwaves" / "plan.yaml.1").read_text().endswith("# my hand edit\n")
    assert "second feature" in plan.read_text()
    res = run_cli("plan", "third feature", "--repo", repo, "--llm", "fake", "--json")
    assert json.loads(res.stdout)["previous_plan"].endswith("plan.yaml.1")
    assert "second feature" in (repo / ".agentwaves" / "plan.yaml.1").read_text()
    assert (repo / ".agentwaves" / "plan.yaml.2").read_text().endswith("# my hand edit\n")


# ------------------------------------------------------------------------------ item 11: default gate


@pytest.mark.parametrize(
    ("files", "command"),
    [
        ({"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-q'\n"}, "python -m pytest -q"),
        ({"package.json": '{"scripts": {"test": "node --test"}}'}, "npm test"),
        ({"Cargo.toml": "[package]\nname = 'x'\n"}, "cargo test"),
        ({"go.mod": "module x\n"}, "go test ./..."),
        ({"Makefile": "build:\n\techo\ntest:\n\techo ok\n", "pytest.ini": "[pytest]\n"}, "make test"),
    ],
)
def test_plan_proposes_the_obvious_test_command_as_gate(
    make_repo, run_cli: Cli, files: dict[str, str], command: str
) -> None:
    repo = make_repo({"src/app.py": "x = 1\n", **files})
    res = run_cli("plan", "add a thing", "--repo", repo, "--llm", "fake")
    assert res.exit_code == 0, res.stderr
    assert f"Gate: final gate `{command}` proposed" in res.stdout
    plan = yaml.safe_load((repo / ".agentwaves" / "plan.yaml").read_text())
    gates = [t for t in plan["tasks"] if t.get("kind") == "gate"]
    assert [g["command"] for g in gates] == [command]


def test_no_default_gate_without_a_test_command_or_when_switched_off(make_repo, run_cli: Cli) -> None:
    repo = make_repo(
        {
            "src/app.py": "x = 1\n",
            "package.json": '{"scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}',
        }
    )
    res = run_cli("plan", "add a thing", "--repo", repo, "--llm", "fake")
    assert "Gate:" not in res.stdout
    plan = yaml.safe_load((repo / ".agentwaves" / "plan.yaml").read_text())
    assert not [t for t in plan["tasks"] if t.get("kind") == "gate"]
    (repo / "go.mod").write_text("module x\n")
    (repo / "agentwaves.yaml").write_text('gate_command: ""\n')
    res = run_cli("plan", "add a thing", "--repo", repo, "--llm", "fake")
    plan = yaml.safe_load((repo / ".agentwaves" / "plan.yaml").read_text())
    assert not [t for t in plan["tasks"] if t.get("kind") == "gate"]


# --------------------------------------------------------- items 7 and 8: execute after a failed run


def test_execute_after_a_failed_run_points_to_resume(make_repo, run_cli: Cli, tmp_path: Path) -> None:
    repo = make_repo()
    plan = _two_task_plan(tmp_path)
    script = write_yaml(tmp_path / "s.yaml", {"faults": [{"task": "b", "error": "fatal", "once": True}]})
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", script)
    assert res.exit_code == 1
    failed = _newest(repo, run_cli)
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake")
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        f"agentwaves: error: the last run {failed} is failed (1/2 tasks done): continue it with "
        f"`agentwaves resume {failed}`, or start over with `agentwaves execute --new`"
    )
    assert _newest(repo, run_cli) == failed  # nothing was started
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--new")
    assert res.exit_code == 0, res.stderr
    newer = _newest(repo, run_cli)
    assert newer != failed
    # a finished run that is not landed: one line, then the new run goes ahead
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake")
    assert res.exit_code == 0, res.stderr
    notes = [line for line in res.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: run {newer} finished but is not landed (`agentwaves land {newer}`); starting a new run"
    ]
    # a command that stops before any run starts says only why: no "starting a new run" above the error
    newest = _newest(repo, run_cli)
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--agent", "nonsense")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        "agentwaves: error: unknown agent 'nonsense': choose builtin, claude-code, codex, acp"
    ]
    assert _newest(repo, run_cli) == newest
    # item 8: resuming the older run prints hints that name it, not the newest
    res = run_cli("resume", failed, "--repo", repo, "--llm", "fake")
    assert res.exit_code == 0, res.stderr
    assert f"Review: agentwaves review {failed}; land: agentwaves land {failed}" in res.stdout
    res = run_cli("status", "--repo", repo, failed)
    assert f"`agentwaves land {failed}`" in res.stdout


# ------------------------------------------------- item 9: retries as they happen, no false speedup


def test_plan_and_execute_show_retries_as_they_happen(make_repo, run_cli: Cli, tmp_path: Path) -> None:
    repo = make_repo({"agentwaves.yaml": "retry_initial_wait: 0\n"})
    faults = [{"task": "planner", "error": "connection", "times": 2}, {"task": "a", "error": "timeout"}]
    script = write_yaml(tmp_path / "s.yaml", {"faults": faults})
    res = run_cli("plan", "x", "--repo", repo, "--llm", "fake", "--fake-script", script)
    assert res.exit_code == 0, res.stderr
    retries = [line for line in res.stderr.splitlines() if line.startswith("model call failed")]
    why = "model call failed (connection error: injected by the fake script)"
    assert retries == [
        f"{why}; attempt 1 failed, retrying in 0.0s",
        f"{why}; attempt 2 failed, retrying in 0.0s",
    ]
    plan = _two_task_plan(tmp_path)
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", script)
    assert res.exit_code == 0, res.stderr
    assert (
        "model call of a failed (timeout: the fake API did not answer in time); attempt 1 failed"
        in res.stdout
    )


def test_no_speedup_for_a_run_that_did_not_finish(make_repo, run_cli: Cli, tmp_path: Path) -> None:
    repo = make_repo()
    plan = _two_task_plan(tmp_path)
    script = write_yaml(
        tmp_path / "s.yaml", {"faults": [{"task": "a", "error": "fatal"}, {"task": "b", "error": "fatal"}]}
    )
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", script)
    assert res.exit_code == 1
    assert "speedup" not in res.stdout and "realized" not in res.stdout
    res = run_cli("resume", "--repo", repo, "--json", "--fake-script", script)
    summary = json.loads(res.stdout.splitlines()[-1])
    assert summary["type"] == "summary" and summary["state"] == "failed"
    assert summary["speedup_realized"] is None and summary["realized_share"] is None
