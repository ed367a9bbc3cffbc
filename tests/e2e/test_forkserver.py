"""The crash sweeps' fork server (tests/e2e/forkserver.py) answers as `python -m agentwaves` does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.forkserver import ForkServer


def test_a_forked_run_prints_exits_and_is_killed_as_the_real_cli(make_repo, tmp_path: Path) -> None:
    repo = make_repo()
    missing = tmp_path / "missing.yaml"
    server = ForkServer(tmp_path / "fs")
    (tmp_path / "fs").mkdir()
    try:
        for argv, env in (
            (["--version"], {}),
            (["analyze", str(missing)], {}),  # exit 2, one line on stderr
            (["status", "--repo", str(repo)], {"COLUMNS": "61"}),
        ):
            real = subprocess.run(
                [sys.executable, "-m", "agentwaves", *argv], env={**os.environ, **env},
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            forked = server.run(argv, {**os.environ, **env})
            assert (forked.returncode, forked.stdout, forked.stderr) == (
                real.returncode,
                real.stdout,
                real.stderr,
            ), argv
        assert server.run(["analyze", str(missing)], dict(os.environ)).returncode == 2
        plan = tmp_path / "plan.yaml"
        plan.write_text("feature: f\ntasks:\n- {id: a, title: A, files: [a.py]}\n")
        argv = ["execute", "--repo", str(repo), "--plan", str(plan), "--llm", "fake", "--sandbox", "none"]
        killed = server.run(argv, {**os.environ, "AGENTWAVES_CRASH_AT": "3"})
        assert killed.returncode == -9, killed.stderr  # the real SIGKILL of a crash point
        assert (repo / ".agentwaves" / "runs").is_dir()
    finally:
        server.close()
