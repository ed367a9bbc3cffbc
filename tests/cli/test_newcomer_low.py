"""Issue 12, the "Low" paper cuts: each through the CLI, on real git repositories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cli.newcomer_support import Cli, _newest, _run_script, _two_task_plan, _write_and_finish
from tests.e2e.helpers import git, write_yaml


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
