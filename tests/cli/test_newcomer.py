"""Issue 12 ("a newcomer's first hour"): each item through the CLI, on real git repositories."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import git, latest_state, write_yaml

Cli = Callable[..., Any]
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


def _run_script(repo: Path, tmp_path: Path, run_cli: Cli, tasks: dict[str, list[dict]], *args: str) -> Any:
    plan = {"feature": "f", "tasks": [{"id": t, "title": t.upper(), "files": [f"{t}.py"]} for t in tasks]}
    plan_file = write_yaml(tmp_path / "plan.yaml", plan)
    script = write_yaml(tmp_path / "script.yaml", {"tasks": tasks})
    return run_cli(
        "execute", "--repo", repo, "--plan", plan_file, "--llm", "fake", "--fake-script", script, *args
    )


def _write_and_finish(path: str, content: str) -> list[dict]:
    return [
        {"tool": "write_file", "input": {"path": path, "content": content}},
        {"tool": "finish", "input": {"summary": f"wrote {path}"}},
    ]


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


def _two_task_plan(tmp_path: Path) -> Path:
    tasks = [{"id": "a", "title": "A", "files": ["a.py"]}, {"id": "b", "title": "B", "files": ["b.py"]}]
    return write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": tasks})


def _newest(repo: Path, run_cli: Cli) -> str:
    return str(json.loads(run_cli("runs", "--repo", repo, "--json").stdout)["runs"][-1]["run"])


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


# ------------------------------------------------------------------------------ Low: paper cuts


def test_version_and_short_help(run_cli: Cli) -> None:
    from agentwaves import __version__

    res = run_cli("--version")
    assert res.exit_code == 0 and res.stdout.strip() == f"agentwaves {__version__}"
    res = run_cli("-h")
    assert res.exit_code == 0 and "Usage: agentwaves" in res.stdout and "execute" in res.stdout
    res = run_cli("status", "-h")
    assert res.exit_code == 0 and "--watch" in res.stdout


def test_analyze_defaults_to_the_repository_plan(make_repo, run_cli: Cli, monkeypatch) -> None:
    repo = make_repo()
    monkeypatch.chdir(repo)
    res = run_cli("analyze")
    assert res.exit_code == 2
    assert res.stderr.startswith("agentwaves: error: no plan at ") and "agentwaves plan" in res.stderr
    (repo / ".agentwaves").mkdir(exist_ok=True)
    write_yaml(repo / ".agentwaves" / "plan.yaml", {"feature": "f", "tasks": [{"id": "only", "title": "O"}]})
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    res = run_cli("analyze", "--json")
    assert res.exit_code == 0, res.stderr
    assert [t for w in json.loads(res.stdout)["waves"] for g in w["groups"] for t in g["tasks"]] == ["only"]


def test_logs_task_defaults_to_the_newest_run(make_repo, run_cli: Cli, tmp_path: Path) -> None:
    repo = make_repo()
    assert _run_script(repo, tmp_path, run_cli, {"a": _write_and_finish("a.py", "A = 1\n")}).exit_code == 0
    res = run_cli("logs", "a", "--repo", repo)
    assert res.exit_code == 0, res.stderr
    assert "write_file a.py" in res.stdout
    rid = _newest(repo, run_cli)
    assert run_cli("logs", rid, "a", "--repo", repo).stdout == res.stdout
    res = run_cli("logs", "nope", "--repo", repo)
    assert res.exit_code == 2 and "has no task 'nope'" in res.stderr


def test_wrong_hints_are_fixed(make_repo, run_cli: Cli, tmp_path: Path) -> None:
    repo = make_repo()
    assert _run_script(repo, tmp_path, run_cli, {"a": _write_and_finish("a.py", "A = 1\n")}).exit_code == 0
    res = run_cli("status", "nosuchrun", "--repo", repo)
    assert res.exit_code == 2 and "`agentwaves runs` lists the runs" in res.stderr
    res = run_cli("execute", "--help")
    budget = res.stdout[res.stdout.index("--budget-usd") :].split("--", 2)[1]
    assert "x>=0" not in budget and "(> 0)" in " ".join(budget.split())
    bad = write_yaml(tmp_path / "bad.yaml", {"feature": "f", "tasks": [{"id": "tâche", "title": "T"}]})
    res = run_cli("analyze", bad)
    assert res.exit_code == 2 and "use ASCII letters, digits" in res.stderr


def test_status_watch_refreshes_until_the_run_ends(make_repo, run_cli: Cli, tmp_path: Path) -> None:
    import sys

    repo = make_repo()
    tasks = [{"id": f"t{i}", "title": f"T{i}", "files": [f"t{i}.py"], "estimate": 10} for i in range(3)]
    tasks.append({"id": "last", "title": "Last", "files": ["last.py"], "estimate": 10, "depends_on": ["t0"]})
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": tasks})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentwaves",
            "execute",
            "--repo",
            str(repo),
            "--plan",
            str(plan),
            "--llm",
            "fake",
            "--fake-time-scale",
            "0.15",
            "--sandbox",
            "none",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        runs = repo / ".agentwaves" / "runs"
        for _ in range(200):
            if runs.is_dir() and any((d / "state.json").is_file() for d in runs.iterdir()):
                break
            subprocess.run(["sleep", "0.05"])
        res = run_cli("status", "--repo", repo, "--watch", "--interval", "0.2")
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert res.exit_code == 0, res.stderr
    assert res.stdout.count("Run ") >= 2  # refreshed at least once
    last = res.stdout[res.stdout.rindex("Run ") :]
    assert "✔ done" in last or "done" in last.splitlines()[0]
    assert "4/4 tasks complete (100%)" in last


def test_long_analysis_prints_a_summary_and_execute_shows_preparation(
    make_repo, run_cli: Cli, tmp_path: Path, monkeypatch
) -> None:
    tasks = [{"id": f"t{i}", "title": f"T{i}", "files": [f"src/m{i % 30}.py"]} for i in range(300)]
    big = write_yaml(tmp_path / "big.yaml", {"feature": "big", "tasks": tasks})
    res = run_cli("analyze", big)
    assert res.exit_code == 0, res.stderr
    assert len(res.stdout.splitlines()) < 60
    assert "A summary of a long plan (300 tasks): --verbose prints every wave" in " ".join(res.stdout.split())
    verbose = run_cli("analyze", big, "--verbose")
    assert all(f"t{i} T{i}" in verbose.stdout for i in range(300))
    assert len(json.loads(run_cli("analyze", big, "--json").stdout)["serialization_points"]) > 10
    # preparation that takes longer than AFTER seconds says so
    import agentwaves.ui.preparing as preparing

    monkeypatch.setattr(preparing, "AFTER", 0.0)
    repo = make_repo()
    res = _run_script(repo, tmp_path, run_cli, {"a": _write_and_finish("a.py", "A = 1\n")})
    assert res.exit_code == 0, res.stderr
    assert "preparing the run: analysing the plan, creating its worktrees …" in res.stderr


def test_piped_tables_never_cut_values(make_repo, run_cli: Cli, tmp_path: Path) -> None:
    repo = make_repo()
    deep = "/".join(["a_rather_long_directory_name"] * 4) + "/with_a_long_module_name.py"
    plan = write_yaml(
        tmp_path / "plan.yaml", {"feature": "f", "tasks": [{"id": "a", "title": "A", "files": [deep]}]}
    )
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake")
    assert res.exit_code == 0, res.stderr
    assert run_cli("land", "--repo", repo).exit_code == 0
    review = run_cli("review", "--repo", repo)
    assert deep in review.stdout and "…" not in review.stdout
    runs = json.loads(run_cli("runs", "--repo", repo, "--json").stdout)["runs"]
    table = run_cli("runs", "--repo", repo).stdout
    assert runs[0]["run"] in table and f"${runs[0]['cost_usd']:.4f}" in table
    assert runs[0]["landed"][:10] in table and "…" not in table


def test_fake_cost_is_marked_simulated_and_status_tokens_add_up(
    make_repo, run_cli: Cli, tmp_path: Path
) -> None:
    from agentwaves.llm.base import Usage
    from agentwaves.llm.usage import DEFAULT_MODEL, cost_usd

    repo = make_repo()
    res = _run_script(repo, tmp_path, run_cli, {"a": _write_and_finish("a.py", "A = 1\n")})
    assert res.exit_code == 0, res.stderr
    assert "(simulated: the fake backend's modelled usage, at real prices)" in res.stdout
    data = json.loads(run_cli("status", "--repo", repo, "--json").stdout)
    usage = data["usage"]
    assert usage["cache_creation_input_tokens"] > 0  # the case the old line left out
    shown = run_cli("status", "--repo", repo).stdout
    line = next(ln for ln in shown.splitlines() if ln.startswith("Tokens:"))
    assert line == (
        f"Tokens: {usage['input_tokens']:,} in, {usage['output_tokens']:,} out, "
        f"{usage['cache_creation_input_tokens']:,} cache write, "
        f"{usage['cache_read_input_tokens']:,} cache read; "
        f"cost ${usage['cost_usd']:.4f} (simulated: the fake backend's modelled usage, at real prices)"
    )
    tokens = {k: usage[k] for k in Usage.model_fields if k in usage}
    assert round(cost_usd(DEFAULT_MODEL, Usage(**tokens)), 4) == round(usage["cost_usd"], 4)


def test_detached_head_execute_names_its_commit_and_land_says_where_it_started(
    make_repo, run_cli: Cli, tmp_path: Path
) -> None:
    repo = make_repo({"README.md": "# one\n"})
    old = git(repo, "rev-parse", "HEAD")
    (repo / "more.txt").write_text("two\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    new = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach", old)
    res = _run_script(repo, tmp_path, run_cli, {"a": _write_and_finish("a.py", "A = 1\n")})
    assert res.exit_code == 0, res.stderr
    assert f"note: HEAD is detached: the run starts from commit {old[:7]} initial" in res.stderr
    rid = _newest(repo, run_cli)
    git(repo, "checkout", "-q", "main")
    res = run_cli("land", "--repo", repo)
    assert res.exit_code == 1
    assert "moved" not in res.stderr
    assert res.stderr.startswith(
        f"agentwaves: error: run {rid} started from commit {old[:7]} on a detached HEAD, not from main "
        f"(now {new[:7]}), so main cannot fast-forward to it: "
        f"rebase the run with `git rebase main agentwaves/{rid}"
    )
    assert git(repo, "rev-parse", "HEAD") == new  # nothing changed


def test_a_failing_gate_prints_the_end_of_its_output(make_repo, run_cli: Cli, tmp_path: Path) -> None:
    repo = make_repo()
    command = "for i in $(seq 1 40); do echo line-$i; done; echo '[red]the real reason[/]' >&2; exit 3"
    tasks = [
        {"id": "a", "title": "A", "files": ["a.py"]},
        {"id": "check", "title": "Check", "kind": "gate", "command": command, "depends_on": ["a"]},
    ]
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": tasks})
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake")
    assert res.exit_code == 1
    shown = [line.strip() for line in res.stderr.splitlines() if line.strip().startswith("| ")]
    assert "| [red]the real reason[/]" in shown and "| [exit 3]" in shown
    assert "| line-40" in shown and "| line-20" not in shown  # only the end
    assert "logs/check.log" in res.stderr


def test_clean_runs_prunes_the_directories_of_runs_cleaned_for_good(
    make_repo, run_cli: Cli, tmp_path: Path
) -> None:
    repo = make_repo()
    plan = _two_task_plan(tmp_path)
    assert run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake").exit_code == 0
    landed = _newest(repo, run_cli)
    assert run_cli("land", "--repo", repo).exit_code == 0
    script = write_yaml(tmp_path / "s.yaml", {"faults": [{"task": "b", "error": "fatal"}]})
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--fake-script", script)
    assert res.exit_code == 1
    failed = _newest(repo, run_cli)
    runs = repo / ".agentwaves" / "runs"
    res = run_cli("clean", "--all", "--runs", "--repo", repo)
    assert res.exit_code == 0, res.stderr
    assert f"run directory .agentwaves/runs/{landed} removed" in res.stdout
    assert not (runs / landed).exists()
    assert (runs / failed / "state.json").is_file()  # still resumable: kept
    assert f"run directory kept: run {failed} still has branches" in res.stdout
    assert [r["run"] for r in json.loads(run_cli("runs", "--repo", repo, "--json").stdout)["runs"]] == [
        failed
    ]
    data = json.loads(run_cli("clean", failed, "--runs", "--force", "--repo", repo, "--json").stdout)
    assert data["runs"][0]["run_dir_removed"] is True and data["freed_bytes"] > 0
    assert not (runs / failed).exists()
