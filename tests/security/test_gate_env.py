"""Which Python a gate uses (issue 12, item 10): the one of the shell that started agentwaves. An activated
venv stays usable inside the sandbox, read-only, even under /tmp (which the sandbox replaces)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.security.support import hostile, needs_bwrap

pytestmark = [needs_bwrap, pytest.mark.slow]


def test_gate_uses_the_activated_venv_read_only(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    assert str(venv).startswith("/tmp/")  # hidden by the sandbox's private /tmp, unless kept visible
    h = hostile(make_repo, tmp_path)
    h.env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv}/bin:{os.environ['PATH']}")
    command = 'python -c "import sys; print(\'PREFIX=\' + sys.prefix)" && (touch "$VIRTUAL_ENV/x" || echo RO)'
    tasks = [{"id": "check", "title": "Tests", "kind": "gate", "command": command}]
    res = h.execute(tasks, {})
    log = (h.repo / ".agentwaves" / "runs" / h.state()["run_id"] / "logs" / "check.log").read_text()
    assert h.tasks()["check"]["state"] == "done", (log, res.stderr)
    assert f"PREFIX={venv}" in log and "RO" in log, log
    assert not (venv / "x").exists()
