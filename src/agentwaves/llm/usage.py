"""Token usage and its cost: the price table, a thread-safe tracker, and the prompt-cache model of the fake.

Prices are USD per million tokens, from the Claude pricing page (platform.claude.com/docs, checked
2026-10): base input, output, 5-minute cache write (1.25x input) and cache read. A model id is matched
exactly, then by the longest known id it starts with (so dated snapshots price like their alias), then
by family (``opus``, ``sonnet``, ``haiku``, ``fable``/``mythos`` price like the current model of that
family); anything else costs 0 and is reported as unknown. OpenAI's models (what Codex runs) are priced
from OpenAI's pricing page (input, output, cached input; no cache-write charge, so it equals input):
Codex reports ``input_tokens`` including the cached ones, which its driver counts as cache reads.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agentwaves.llm.base import Request, Usage


@dataclass(frozen=True)
class Price:
    """USD per million tokens. ``long_threshold``: prompts above it bill every token at ``long_factor`` x."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    long_threshold: int | None = None
    long_factor: float = 1.0


DEFAULT_MODEL = "claude-sonnet-5-5"
"""The default model: the current Sonnet. Override with ``--model`` or ``AGENTWAVES_MODEL``."""

PRICES: dict[str, Price] = {
    "claude-fable-5-1": Price(10.0, 50.0, 12.5, 0.25),
    "claude-mythos-5-1": Price(10.0, 50.0, 12.5, 0.25),
    "claude-fable-5": Price(10.0, 50.0, 12.5, 1.0),
    "claude-mythos-5": Price(10.0, 50.0, 12.5, 1.0),
    "claude-opus-5-5": Price(4.0, 20.0, 5.0, 0.20),
    "claude-opus-5": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-8": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-7": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-6": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-5": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-1": Price(15.0, 75.0, 18.75, 1.50),
    "claude-opus-4": Price(15.0, 75.0, 18.75, 1.50),
    "claude-sonnet-5-5": Price(2.0, 10.0, 2.5, 0.10),
    "claude-sonnet-5": Price(2.0, 10.0, 2.5, 0.20),
    "claude-sonnet-4": Price(3.0, 15.0, 3.75, 0.30),
    "claude-3-7-sonnet": Price(3.0, 15.0, 3.75, 0.30),
    "claude-haiku-5-5": Price(0.10, 0.50, 0.125, 0.01, long_threshold=100_000, long_factor=5.0),
    "claude-haiku-4-5": Price(1.0, 5.0, 1.25, 0.10),
    "claude-3-5-haiku": Price(0.80, 4.0, 1.0, 0.08),
    "claude-3-haiku": Price(0.25, 1.25, 0.30, 0.03),
    "gpt-5": Price(1.25, 10.0, 1.25, 0.125),
    "gpt-5-codex": Price(1.25, 10.0, 1.25, 0.125),
    "gpt-5-mini": Price(0.25, 2.0, 0.25, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.05, 0.005),
    "gpt-5.1": Price(1.25, 10.0, 1.25, 0.125),
    "gpt-5.1-codex": Price(1.25, 10.0, 1.25, 0.125),
    "gpt-5.1-codex-mini": Price(0.25, 2.0, 0.25, 0.025),
    "gpt-5.2": Price(1.75, 14.0, 1.75, 0.175),
    "gpt-5.2-codex": Price(1.75, 14.0, 1.75, 0.175),
}

FAMILIES: dict[str, str] = {
    "fable": "claude-fable-5-1",
    "mythos": "claude-mythos-5-1",
    "opus": "claude-opus-5-5",
    "sonnet": "claude-sonnet-5-5",
    "haiku": "claude-haiku-5-5",
}


def price_for(model: str) -> Price | None:
    """The price of ``model`` (exact id, id prefix, then family), or None when unknown."""
    m = model.strip().lower()
    i = m.find("claude-")
    if i > 0:  # "anthropic/claude-…", "fake/claude-…", Bedrock's "anthropic.claude-…"
        m = m[i:]
    elif i < 0 and (j := m.find("gpt-")) > 0:  # "openai/gpt-…"
        m = m[j:]
    if m in PRICES:
        return PRICES[m]
    # "gpt-5.5" is another model than "gpt-5": a dot continues a GPT version, it does not end it
    prefixes = [
        k for k in PRICES if m.startswith(k) and m[len(k)] in ("-@[:" if k[:4] == "gpt-" else "-@[:.")
    ]
    if prefixes:
        return PRICES[max(prefixes, key=len)]
    for family, key in FAMILIES.items():
        if family in m:
            return PRICES[key]
    return None


def cost_known(model: str) -> bool:
    return price_for(model) is not None


def cost_usd(model: str, usage: Usage) -> float:
    """USD cost of ``usage`` (one call, for the long-prompt tier) on ``model``; 0.0 for an unknown model."""
    p = price_for(model)
    if p is None:
        return 0.0
    factor = p.long_factor if p.long_threshold is not None and usage.total_input > p.long_threshold else 1.0
    micro = (
        usage.input_tokens * p.input
        + usage.output_tokens * p.output
        + usage.cache_creation_input_tokens * p.cache_write
        + usage.cache_read_input_tokens * p.cache_read
    )
    return micro * factor / 1_000_000


def usage_json(
    model: str, usage: Usage, cost: float | None = None, known: bool | None = None
) -> dict[str, Any]:
    """The usage as a JSON-ready dict with its cost; ``cost_known`` is false for an unpriced model
    (unless ``known`` says otherwise: an agent that reports its own cost)."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cost_usd": round(cost_usd(model, usage) if cost is None else cost, 6),
        "cost_known": cost_known(model) if known is None else known,
    }


class UsageTracker:
    """Sums usage and cost per scope (a task id, ``planner``, a resolver group…). Safe across threads.

    Each :meth:`add` is priced on its own, so per-call price tiers are applied correctly.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: dict[str, Usage] = {}
        self._cost: dict[str, float] = {}
        self._unknown: set[str] = set()
        self._unknown_scopes: set[str] = set()

    def add(
        self, scope: str, model: str, usage: Usage, cost: float | None = None, known: bool | None = None
    ) -> float:
        """Record one call's usage; returns its cost in USD (``cost``, when the agent reported it).

        ``known``: whether that cost is known, when the caller knows better than the price table (a
        task's recorded usage restored on resume: its cost stays unknown whatever model resumes it)."""
        if known is None:
            known = cost is not None or cost_known(model)
        cost = cost_usd(model, usage) if cost is None else cost
        with self._lock:
            self._usage[scope] = self._usage.get(scope, Usage()) + usage
            self._cost[scope] = self._cost.get(scope, 0.0) + cost
            if not known:
                if not cost_known(model):
                    self._unknown.add(model)
                self._unknown_scopes.add(scope)
        return cost

    def known(self, scope: str) -> bool:
        """Whether every cost recorded for ``scope`` was priced (or reported by the agent)."""
        with self._lock:
            return scope not in self._unknown_scopes

    def all_known(self) -> bool:
        """Whether every cost recorded, in every scope, was priced (or reported by the agent)."""
        with self._lock:
            return not self._unknown_scopes

    def by_scope(self) -> dict[str, Usage]:
        with self._lock:
            return dict(self._usage)

    def total(self) -> Usage:
        with self._lock:
            return sum(self._usage.values(), Usage())

    def cost(self, scope: str | None = None) -> float:
        with self._lock:
            return self._cost.get(scope, 0.0) if scope is not None else sum(self._cost.values())

    @property
    def unknown_models(self) -> set[str]:
        """Models seen whose price is unknown (their cost counted as 0)."""
        with self._lock:
            return set(self._unknown)

    def to_json(self) -> dict[str, Any]:
        """``{"scopes": {scope: usage dict}, "total": usage dict}``, each with ``cost_usd``."""
        with self._lock:
            usage, costs, known = dict(self._usage), dict(self._cost), not self._unknown_scopes

        def one(u: Usage, c: float) -> dict[str, Any]:
            return {**usage_json("", u, cost=c), "cost_known": known}

        return {
            "scopes": {s: one(u, costs[s]) for s, u in sorted(usage.items())},
            "total": one(sum(usage.values(), Usage()), sum(costs.values())),
        }


# ------------------------------------------------------------------------- modelled usage (fake backend)


def estimate_tokens(text: str) -> int:
    """About four characters a token, as for English and code."""
    return math.ceil(len(text) / 4)


class PromptCacheModel:
    """Models Anthropic prompt caching for the fake: which prefixes of a request earlier calls wrote.

    A request is a chain of segments: (tools + system), then each message. With ``request.cache`` the
    real backend puts breakpoints after the tools+system prefix and after the last message, so those
    two prefixes are written; a later request reads the longest earlier-written prefix it starts with.
    Prefixes are identified by a hash chain, so identical system prompts and tools across agents are
    shared, as they are on the API. Cache lifetime and minimum cacheable length are not modelled.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: set[str] = set()

    def usage(self, request: Request, output_text: str) -> Usage:
        tools = json.dumps([t.model_dump() for t in request.tools], sort_keys=True)
        segments = [tools + "\n" + request.system, *(m.model_dump_json() for m in request.messages)]
        hashes: list[str] = []
        cum: list[int] = []
        h, total = "", 0
        for seg in segments:
            h = hashlib.sha256((h + "\x00" + seg).encode()).hexdigest()
            total += estimate_tokens(seg)
            hashes.append(h)
            cum.append(total)
        out = estimate_tokens(output_text)
        if not request.cache:
            return Usage(input_tokens=total, output_tokens=out)
        with self._lock:
            hit = next((k for k in range(len(hashes) - 1, -1, -1) if hashes[k] in self._written), None)
            self._written.update((hashes[0], hashes[-1]))
        read = cum[hit] if hit is not None else 0
        return Usage(
            input_tokens=0,
            output_tokens=out,
            cache_creation_input_tokens=total - read,
            cache_read_input_tokens=read,
        )


USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def sum_usage(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sum of usage dicts (as stored in state and events): token counts, ``cost_usd``, and
    ``cost_known`` (false when any of them says its cost is unknown: the sum is then a lower bound)."""
    total: dict[str, Any] = dict.fromkeys(USAGE_KEYS, 0)
    cost, known = 0.0, True
    for usage in items:
        for key in USAGE_KEYS:
            total[key] += int(usage.get(key) or 0)
        cost += float(usage.get("cost_usd") or 0.0)
        known = known and usage.get("cost_known") is not False
    total["cost_usd"], total["cost_known"] = round(cost, 6), known
    return total
