"""The suite's scheduling (tests/suite_order.py), on a small project run by real pytest-xdist workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RECORD = """import os
from pathlib import Path

import pytest


def _record(name):
    with Path(os.environ["ORDER_LOG"], os.environ["PYTEST_XDIST_WORKER"]).open("a") as log:
        log.write(name + "\\n")

{tests}
"""


def _module(prefix: str, n: int) -> str:
    return RECORD.format(
        tests="\n".join(f"def test_{prefix}{i}():\n    _record('{prefix}{i}')\n" for i in range(n))
    )


def test_the_ray_tests_run_on_one_worker_and_the_slow_modules_first(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "tests" / "raycluster").mkdir(parents=True)
    (project / "tests" / "e2e").mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "tests" / "raycluster" / "test_ray.py").write_text(_module("ray", 8))
    (project / "tests" / "aaa").mkdir()  # collected before e2e/
    (project / "tests" / "aaa" / "test_other.py").write_text(_module("other", 8))
    (project / "tests" / "e2e" / "test_crash_sweep.py").write_text(_module("sweep", 1))
    log = tmp_path / "log"
    log.mkdir()
    # only the plugins it needs: workers that also load hypothesis, anyio ... start seconds later
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ORDER_LOG": str(log),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "xdist",
        "-p",
        "tests.suite_order",
        "-p",
        "no:cacheprovider",
    ]
    res = subprocess.run(
        [*argv, "-n", "2", "--dist", "loadgroup", "-v", "tests"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    order = {p.name: p.read_text().split() for p in log.iterdir()}  # worker -> its tests, in order
    ran = {name: worker for worker, names in order.items() for name in names}
    assert len(ran) == 17
    assert len({ran[f"ray{i}"] for i in range(8)}) == 1, order  # one worker, so one cluster
    # the Ray unit (most tests) is sent first; the other worker starts with the slow module, not with the
    # tests collected before it
    other = next(worker for worker in order if worker != ran["ray0"])
    assert order[other][0] == "sweep0", order


def test_auto_starts_one_worker_more_than_xdist_would_unless_the_number_is_set(
    pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xdist.plugin import pytest_xdist_auto_num_workers as xdist_default

    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    hook = pytestconfig.pluginmanager.hook.pytest_xdist_auto_num_workers  # the registered chain
    assert hook(config=pytestconfig) == xdist_default(pytestconfig) + 1
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "5")
    assert hook(config=pytestconfig) == 5
