"""Cost: tokens and dollars per task with prompt caching on and off (the fake's usage model).

The offline demo (the bundled sandbox project, the fake planner's plan: 6 agent tasks in 3 waves and a
test gate) runs twice with the fake LLM, whose usage accounting models Anthropic's prompt cache
(:class:`agentwaves.llm.usage.PromptCacheModel`): once as agentwaves runs it (every request asks for
caching), once with ``prompt_cache: false`` (every request then has ``cache=False``: the real backend
sends no ``cache_control`` breakpoints). Usage per task comes from ``state.json``.

``cache_read_share``: cache reads / all input tokens (uncached + cache writes + cache reads), over the
tasks that are not the first to start in their wave; ``first_agent_share`` the same for the first ones.
Costs are priced on the model the fake's usage is modelled on.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from .runs import Measured, git_identity, measured

TIME_SCALE = 0.05  # seconds per plan minute: the demo's 18 minutes of work take about a second
INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def demo_run(cache: bool) -> Measured:
    """Plan and run the offline demo on a fresh copy of the sandbox; caching on or off for the agents."""
    from agentwaves.demo import FEATURE, prepare_repo
    from agentwaves.run.planning import draft_plan
    from agentwaves.run.session import start_run

    with tempfile.TemporaryDirectory(prefix="agentwaves-cost-") as name, git_identity():
        repo = prepare_repo(Path(name) / "notify")
        draft_plan(repo, FEATURE, {"llm": "fake"})
        overrides = {"llm": "fake", "fake_time_scale": TIME_SCALE, "sandbox": "none", "prompt_cache": cache}
        outcome = start_run(repo, None, overrides)
        if not outcome.ok:
            raise RuntimeError(f"the demo run failed: {outcome.state.error}")
        return measured(outcome)


def first_agents(m: Measured) -> set[str]:
    """The agent task that started first in each wave (gates have no usage and do not count)."""
    out = set()
    for wave in m.waves:
        agents = [t for t in wave if t in m.usage and t in m.started]
        if agents:
            out.add(min(agents, key=lambda t: m.started[t]))
    return out


def _share(m: Measured, tasks: list[str]) -> float | None:
    read = sum(m.usage[t]["cache_read_input_tokens"] for t in tasks)
    total = sum(m.usage[t][k] for t in tasks for k in INPUT_KEYS)
    return round(read / total, 4) if total else None


def _per_task(m: Measured, key: str) -> float:
    return sum(u.get(key, 0.0) for u in m.usage.values()) / max(1, len(m.usage))


def run(quick: bool = False) -> dict[str, Any]:
    """Both runs (``quick`` changes nothing: the demo takes a few seconds)."""
    on, off = demo_run(cache=True), demo_run(cache=False)
    firsts = first_agents(on)
    later = sorted(t for t in on.usage if t not in firsts)
    rows = []
    for wave_index, wave in enumerate(on.waves, 1):
        for t in wave:
            if t not in on.usage:
                continue
            u, v = on.usage[t], off.usage.get(t, {})
            rows.append(
                {
                    "task": t,
                    "wave": wave_index,
                    "first_in_wave": t in firsts,
                    "input_total": int(sum(u[k] for k in INPUT_KEYS)),
                    "cache_read": int(u["cache_read_input_tokens"]),
                    "cache_write": int(u["cache_creation_input_tokens"]),
                    "output": int(u["output_tokens"]),
                    "cost_usd_cache_on": round(u.get("cost_usd", 0.0), 5),
                    "cost_usd_cache_off": round(v.get("cost_usd", 0.0), 5),
                }
            )
    cost_on, cost_off = _per_task(on, "cost_usd"), _per_task(off, "cost_usd")
    return {
        "cache_read_share": _share(on, later),
        "first_agent_share": _share(on, sorted(firsts)),
        "all_tasks_share": _share(on, sorted(on.usage)),
        "cache_read_share_cache_off": _share(off, sorted(off.usage)),
        "tasks": len(on.usage),
        "tasks_after_first": len(later),
        "input_tokens_per_task": {
            "cache_on": round(sum(_per_task(on, k) for k in INPUT_KEYS)),
            "cache_off": round(sum(_per_task(off, k) for k in INPUT_KEYS)),
        },
        "output_tokens_per_task": round(_per_task(on, "output_tokens")),
        "cost_usd_per_task": {"cache_on": round(cost_on, 5), "cache_off": round(cost_off, 5)},
        "cost_saving": round(1 - cost_on / cost_off, 3) if cost_off else None,
        "rows": rows,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv[1:]), indent=2))
