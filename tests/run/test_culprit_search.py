"""The search's shape: every group at once up to the limit, halves (bisection) above it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from agentwaves.run.feedback.culprit import search


class FakeGate:
    """Stands in for the gate: a merge fails when it holds a broken group."""

    def __init__(self, broken: set[str], unmergeable: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.broken, self.unmergeable = broken, unmergeable
        self.calls: list[tuple[str, ...]] = []

    def test(self, groups: list[str]) -> Any:
        self.calls.append(tuple(groups))
        if set(groups) & self.unmergeable:
            return None
        return SimpleNamespace(ok=not set(groups) & self.broken, output="")


@pytest.mark.parametrize(("limit", "tests"), [(8, 8), (2, 6), (1, 6)])
def test_one_culprit_among_eight(limit: int, tests: int) -> None:
    names = [f"g{i}" for i in range(8)]
    tester = FakeGate({"g5"})
    culprits, runs, untestable = search(tester, names, limit)  # type: ignore[arg-type]
    assert culprits == ["g5"] and list(runs) == ["g5"] and untestable == []
    assert len(tester.calls) == tests
    if limit < 8:
        assert ("g0", "g1", "g2", "g3") in tester.calls  # a passing half clears four groups at once


def test_several_culprits_and_untestable_groups() -> None:
    tester = FakeGate({"b", "d"}, unmergeable={"c"})
    culprits, _, untestable = search(tester, ["a", "b", "c", "d"], 4)  # type: ignore[arg-type]
    assert culprits == ["b", "d"] and untestable == ["c"]


def test_only_the_combination_fails() -> None:
    culprits, _, untestable = search(FakeGate(set()), ["a", "b", "c"], 4)  # type: ignore[arg-type]
    assert culprits == [] and untestable == []
