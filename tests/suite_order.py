"""How the suite spreads over pytest-xdist workers: one more worker than CPUs, the Ray tests as one unit,
the slowest tests first.

pytest 9.2 keeps a node's id in ``Node._id``; pytest-xdist 3.8's ``--dist loadgroup`` still renames
``Node._nodeid`` to add the ``@group`` suffix, which no longer changes ``nodeid``, so ``xdist_group`` marks
are ignored and the Ray tests were spread over both workers (two clusters, each module fixture twice).
:func:`pytest_xdist_make_scheduler` groups them itself, by path. The slowest tests are moved to the front
of the collection (:func:`slow_first`): a long test that starts last leaves the other worker idle at the end.
``tests/conftest.py`` imports the two hooks; ``-p tests.suite_order`` loads them into another project.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

# One unit of work on one worker: the tests share one session-scoped Ray cluster (tests/raycluster).
GROUPS = {"tests/raycluster/": "ray"}

# Whole modules, slowest first (`--durations` of 2026-12-01, 2 CPUs); the rest keep collection order.
SLOW_FIRST = (
    "tests/e2e/test_crash_sweep.py",
    "tests/reliability/test_fuzz_cli.py",
    "tests/plan/test_properties.py",
    "tests/reliability/test_damaged_state.py",
    "tests/reliability/test_bounded.py",
    "tests/reliability/test_git_state.py",
    "tests/agents/test_claude_code_failures.py",
    "tests/reliability/test_kill_resume.py",
    "tests/reliability/test_secrets.py",
    "tests/reliability/test_hostile.py",
    "tests/benchmarks/test_benchmarks_smoke.py",
    "tests/agents/test_claude_code.py",
    "tests/security/test_escapes.py",
)


def group_of(nodeid: str) -> str | None:
    """The work unit a test belongs to by its path, if any."""
    return next((group for prefix, group in GROUPS.items() if nodeid.startswith(prefix)), None)


def slow_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: the modules of :data:`SLOW_FIRST` in that order, then the rest as
    collected (a stable sort, so tests keep their order within a module)."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow_first(items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` that also groups by :data:`GROUPS` (and by ``@group`` ids, once xdist sets
    them again). Units with more tests are sent first (xdist's default), so the Ray unit starts at once."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class SuiteScheduling(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid) or super()._split_scope(nodeid)

    return SuiteScheduling(config, log)


@pytest.hookimpl(optionalhook=True, wrapper=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Generator[None, int, int]:
    """``-n auto``: one worker more than xdist would start (one per CPU), unless
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` sets the number. Many tests wait part of their time (a Ray job's
    new workers, a stub's delay, a hang's timeout); a third worker on two CPUs fills some of those gaps:
    the whole suite in place took 370, 412 and 424 s with three workers, 396 to 428 s with two and 400 s
    with four (2026-12-02; the machine's spread is about ±20 s, so the gain is a few per cent at best)."""
    count = yield
    return count if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") else count + 1
