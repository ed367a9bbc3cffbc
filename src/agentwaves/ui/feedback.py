"""Lines for held-back groups, repairs, revisions and replaced wave commits (status and review)."""

from __future__ import annotations

from typing import Any

from rich.text import Text


def _first(text: Any, limit: int = 100) -> str:
    lines = str(text or "").strip().splitlines()
    return (lines[0] if lines else "")[:limit]


def repair_lines(repairs: list[dict[str, Any]], indent: str = "      ") -> list[Text]:
    out = []
    for r in repairs:
        verdict = ("passed", "green") if r.get("passed") else ("still failing", "red")
        line = Text(f"{indent}repair {r['attempt']} of {r['task']} (gate {r['gate']}): ")
        line.append(verdict[0], style=verdict[1])
        line.append(f"  ${float(r.get('cost_usd') or 0):.4f}", style="dim")
        if r.get("error"):
            line.append(f" — {_first(r['error'])}", style="red")
        out.append(line)
    return out


def status_group_lines(group: dict[str, Any]) -> list[Text]:
    out = []
    if group.get("held"):
        out.append(Text("      held out of the wave commit: it broke a gate", style="red"))
    return out + repair_lines(group.get("repairs") or [])


def review_wave_lines(wave: dict[str, Any]) -> list[Text]:
    out: list[Text] = []
    for name in wave.get("held") or []:
        out.append(Text(f"held out of this wave (broke a gate): {name}", style="red"))
    out += repair_lines(wave.get("repairs") or [], indent="")
    for t in wave.get("tasks") or []:
        for r in t.get("revisions") or []:
            line = Text(f"revision {r['n']} of {t['id']} ({r['state']}): ", style="cyan")
            line.append(_first(r.get("comment"), 200), style="default")
            if r.get("error"):
                line.append(f" — {_first(r['error'])}", style="red")
            out.append(line)
    return out


def history_lines(data: dict[str, Any]) -> list[Text]:
    out = []
    for h in data.get("history") or []:
        out.append(Text(f"history {h['n']}: {_first(h.get('reason'), 160)}", style="bold"))
        for ref, sha in (h.get("refs") or {}).items():
            out.append(Text(f"  {ref}  {str(sha)[:10]}", style="dim"))
    return out
