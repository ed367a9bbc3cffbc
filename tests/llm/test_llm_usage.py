"""Prices, cost and the usage tracker."""

from __future__ import annotations

import threading

import pytest

from agentwaves.llm.base import Usage
from agentwaves.llm.usage import (
    DEFAULT_MODEL,
    PRICES,
    Price,
    UsageTracker,
    cost_known,
    cost_usd,
    price_for,
    sum_usage,
    usage_json,
)

MTOK = Usage(
    input_tokens=1_000_000,
    output_tokens=1_000_000,
    cache_creation_input_tokens=1_000_000,
    cache_read_input_tokens=1_000_000,
)


def test_default_model_is_priced_sonnet() -> None:
    assert "sonnet" in DEFAULT_MODEL and DEFAULT_MODEL in PRICES
    assert cost_usd(DEFAULT_MODEL, Usage(input_tokens=1_000_000)) == pytest.approx(2.0)
    assert cost_usd(DEFAULT_MODEL, Usage(output_tokens=2_000_000)) == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-sonnet-5-5", 2 + 10 + 2.5 + 0.1),
        ("claude-opus-5-5", 4 + 20 + 5 + 0.2),
        ("claude-haiku-4-5-20251001", 1 + 5 + 1.25 + 0.1),  # dated snapshot -> its alias
        ("claude-opus-4-20250514", 15 + 75 + 18.75 + 1.5),
        ("claude-opus-4-6", 5 + 25 + 6.25 + 0.5),
        ("anthropic/claude-sonnet-4-5", 3 + 15 + 3.75 + 0.3),
        ("fake/claude-sonnet-5-5", 2 + 10 + 2.5 + 0.1),
        ("claude-sonnet-9-experimental", 2 + 10 + 2.5 + 0.1),  # family fallback: the current Sonnet
    ],
)
def test_cost_per_model(model: str, expected: float) -> None:
    assert cost_usd(model, MTOK) == pytest.approx(expected)
    assert cost_known(model)


def test_unknown_model_costs_zero_and_is_marked() -> None:
    assert price_for("gpt-9") is None and not cost_known("gpt-9")
    assert cost_usd("gpt-9", MTOK) == 0.0
    assert usage_json("gpt-9", MTOK)["cost_known"] is False


def test_haiku_5_5_long_prompt_tier() -> None:
    short = Usage(input_tokens=100_000, output_tokens=1000)
    long = Usage(input_tokens=100_001, output_tokens=1000)
    assert cost_usd("claude-haiku-5-5", short) == pytest.approx((100_000 * 0.10 + 1000 * 0.50) / 1e6)
    assert cost_usd("claude-haiku-5-5", long) == pytest.approx(5 * (100_001 * 0.10 + 1000 * 0.50) / 1e6)


def test_usage_json() -> None:
    u = Usage(input_tokens=10, output_tokens=20, cache_creation_input_tokens=30, cache_read_input_tokens=40)
    assert usage_json("claude-sonnet-5-5", u) == {
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_creation_input_tokens": 30,
        "cache_read_input_tokens": 40,
        "cost_usd": round((10 * 2 + 20 * 10 + 30 * 2.5 + 40 * 0.1) / 1e6, 6),
        "cost_known": True,
    }


def test_tracker_is_thread_safe_and_scoped() -> None:
    tracker = UsageTracker()
    one = Usage(input_tokens=1, output_tokens=2, cache_creation_input_tokens=3, cache_read_input_tokens=4)

    def work(scope: str) -> None:
        for _ in range(500):
            tracker.add(scope, "claude-sonnet-5-5", one)

    threads = [threading.Thread(target=work, args=(f"t{i % 4}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    by_scope = tracker.by_scope()
    assert sorted(by_scope) == ["t0", "t1", "t2", "t3"]
    assert by_scope["t0"] == Usage(
        input_tokens=1000, output_tokens=2000, cache_creation_input_tokens=3000, cache_read_input_tokens=4000
    )
    assert tracker.total().input_tokens == 4000
    assert tracker.cost() == pytest.approx(4 * tracker.cost("t0"))
    assert tracker.cost("nope") == 0.0
    assert tracker.unknown_models == set()
    tracker.add("planner", "mystery-model", one)
    assert tracker.unknown_models == {"mystery-model"}
    data = tracker.to_json()
    assert data["total"]["input_tokens"] == 4001 and data["total"]["cost_known"] is False
    assert set(data["scopes"]) == {"t0", "t1", "t2", "t3", "planner"}


def test_gpt_models_codex_runs_are_priced_and_a_dot_continues_a_version() -> None:
    assert price_for("gpt-5.1-codex") == Price(1.25, 10.0, 1.25, 0.125)
    assert price_for("gpt-5.1-codex-max") == price_for("gpt-5.1-codex")  # a variant prices like its base
    assert price_for("openai/gpt-5") == price_for("gpt-5")
    assert price_for("gpt-5.2-codex") == Price(1.75, 14.0, 1.75, 0.175)
    assert price_for("gpt-5.5") is None and price_for("gpt-5.9-codex") is None  # not gpt-5's price
    # 1M uncached input, 1M cached, 1M output on gpt-5.1-codex
    usage = Usage(input_tokens=1_000_000, cache_read_input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost_usd("gpt-5.1-codex", usage) == pytest.approx(1.25 + 0.125 + 10.0)


def test_a_cost_recorded_as_unknown_stays_unknown_whatever_the_model() -> None:
    """What `resume` restores: a task's recorded usage keeps its cost and its unknown flag, even when the
    resuming model is priced (it is never repriced as that model)."""
    tracker = UsageTracker()
    tokens = Usage(input_tokens=1000, output_tokens=500)
    assert tracker.add("a", "claude-sonnet-5-5", tokens, cost=0.0, known=False) == 0.0
    tracker.add("b", "claude-sonnet-5-5", tokens)
    assert not tracker.known("a") and tracker.known("b") and not tracker.all_known()
    assert tracker.cost() == pytest.approx(cost_usd("claude-sonnet-5-5", tokens))
    assert tracker.to_json()["total"]["cost_known"] is False
    fresh = UsageTracker()
    fresh.add("b", "claude-sonnet-5-5", tokens)
    fresh.add("c", "agent", Usage(), cost=0.5)  # reported by the agent: known
    assert fresh.all_known() and fresh.to_json()["total"]["cost_known"] is True


def test_a_sum_of_usages_is_unknown_if_any_of_them_is() -> None:
    known = {"input_tokens": 10, "cost_usd": 0.25, "cost_known": True}
    assert sum_usage([known, {"output_tokens": 3, "cost_usd": 0.5}])["cost_known"] is True  # no flag: known
    total = sum_usage([known, {"input_tokens": 5, "cost_usd": 0.0, "cost_known": False}])
    assert total["input_tokens"] == 15 and total["cost_usd"] == 0.25 and total["cost_known"] is False
    assert sum_usage([])["cost_known"] is True
