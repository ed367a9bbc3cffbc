"""The feedback loops' parts of ``status --json``, ``review --json`` and the report (see docs/cli.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentwaves.state.store import GroupState, RunState, TaskState, WaveState


def group_extra(w: WaveState, g: GroupState) -> dict[str, Any]:
    """``held``: left out of the wave commit as a gate's culprit; ``repairs``: its repair attempts."""
    return {"held": g.name in w.held, "repairs": [r.model_dump() for r in g.repairs]}


def task_extra(t: TaskState) -> dict[str, Any]:
    return {"revisions": [r.model_dump() for r in t.revisions]}


def wave_extra(w: WaveState) -> dict[str, Any]:
    repairs = [{"group": g.name} | r.model_dump() for g in w.groups for r in g.repairs]
    return {"held": list(w.held), "repairs": repairs}


def run_extra(s: RunState) -> dict[str, Any]:
    baseline = {k: v.model_dump() for k, v in (s.baseline or {}).items()}
    return {"baseline": baseline, "history": [h.model_dump() for h in s.history]}


def report_lines(s: RunState, cell: Callable[[str], str]) -> list[str]:
    """Markdown sections: the baseline, repairs, revisions and replaced wave commits."""
    out: list[str] = []
    failing = {k: v for k, v in (s.baseline or {}).items() if not v.passed}
    if failing:
        out += ["## Baseline", ""]
        for gate, b in failing.items():
            detail = f"{len(b.failing)} failing test(s)" if b.junit else f"exit {b.exit}"
            out.append(f"- gate `{gate}` already failed on the base: {detail}")
        out.append("")
    repairs = [(w, g, r) for w in s.waves for g in w.groups for r in g.repairs]
    if repairs or any(w.held for w in s.waves):
        out += [
            "## Repairs",
            "",
            "| wave | group | task | gate | attempt | passed | cost |",
            "|---|---|---|---|---|---|---|",
        ]
        for w, g, r in repairs:
            out.append(
                f"| {w.index} | {cell(g.name)} | {r.task} | {r.gate} | {r.attempt} "
                f"| {'yes' if r.passed else 'no'} | ${r.cost_usd:.4f} |"
            )
        for w in s.waves:
            for name in w.held:
                out.append(f"\nHeld out of wave {w.index}: {cell(name)} ({cell(s.group(name).error or '')})")
        out.append("")
    revisions = [(t, v) for t in s.tasks() for v in t.revisions]
    if revisions:
        out += ["## Revisions", ""]
        for t, v in revisions:
            out.append(
                f"- {t.id} #{v.n} ({v.state}, ${v.cost_usd:.4f}): {cell(v.comment.splitlines()[0][:120])}"
            )
        out.append("")
    if s.history:
        out += ["## Replaced wave commits", ""]
        for h in s.history:
            refs = ", ".join(f"`{ref}` {sha[:10]}" for ref, sha in h.refs.items())
            out.append(f"- {h.n}. {cell(h.reason)}: {refs}")
        out.append("")
    return out
