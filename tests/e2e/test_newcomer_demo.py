"""Issue 12, item 1: the README's first command works with only the package installed (no pytest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import git


@pytest.fixture
def python_without_site_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``python`` and ``python3`` on PATH run this interpreter with ``-S``: no pytest, no site-packages."""
    bin_dir = tmp_path / "bare-python"
    bin_dir.mkdir()
    for name in ("python", "python3"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_demo_gate_needs_no_pytest(tmp_path: Path, run_cli, python_without_site_packages: Path) -> None:
    check = subprocess.run(["python3", "-c", "import pytest"], capture_output=True)
    assert check.returncode != 0  # the interpreter the gate finds really has no pytest
    dest = tmp_path / "demo"
    res = run_cli("demo", "--time-scale", "0", "--dir", dest)
    assert res.exit_code == 0, res.stderr + res.stdout
    assert "gate tests passed" in res.stdout
    branch = git(dest, "branch", "--list", "agentwaves/*", "--format=%(refname:short)")
    git(dest, "checkout", "-q", branch)
    ran = subprocess.run(["python3", "run_tests.py"], cwd=dest, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert " passed, 0 failed" in ran.stdout
