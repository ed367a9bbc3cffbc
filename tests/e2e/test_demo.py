"""`agentwaves demo` from a fresh clone: the README's first command, offline."""

from __future__ import annotations

import re

from agentwaves.demo import sandbox_tests_pass
from tests.e2e.helpers import git


def test_demo_runs_offline(tmp_path, run_cli) -> None:
    dest = tmp_path / "demo"
    res = run_cli("demo", "--time-scale", "0.02", "--dir", dest)
    assert res.exit_code == 0, res.stderr + res.stdout
    branch = git(dest, "branch", "--list", "agentwaves/*", "--format=%(refname:short)")
    subjects = git(dest, "log", "--format=%s", f"main..{branch}").splitlines()
    assert len(subjects) >= 3
    assert all(re.fullmatch(r"agentwaves: wave \d+ complete \(.+\)", s) for s in subjects)
    assert "gate tests passed" in res.stdout
    assert "Per-wave commits" in res.stdout
    git(dest, "checkout", "-q", branch)
    assert sandbox_tests_pass(dest)
    assert git(dest, "ls-files", "notify/email.py") or git(dest, "ls-files", "notify")
