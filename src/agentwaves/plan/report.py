"""The parallelization analysis as Markdown (``parallelization-analysis.md``), and its Mermaid helpers.

The Mermaid and Markdown helpers at the top are generic (ids, labels, table cells) so other reports (a
run's Gantt chart, say) can reuse them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from agentwaves.plan.conflicts import enumerate_items

if TYPE_CHECKING:
    from agentwaves.plan.graph import Analysis

MERMAID_MAX_TASKS = 300
WAVE_COLORS = ("#22c55e", "#3b82f6", "#f59e0b", "#ef4444", "#a855f7", "#14b8a6")

# ------------------------------------------------------------------------------------------ helpers


def mermaid_id(raw: str, prefix: str = "n") -> str:
    """A Mermaid node id for any string: injective, never a keyword (``end``), never starts with a digit."""
    safe = "".join(c if (c.isascii() and c.isalnum()) else f"_{ord(c):x}_" for c in raw)
    return f"{prefix}_{safe}"


def mermaid_text(text: str, limit: int = 80) -> str:
    """Text for inside a quoted Mermaid label: one line, entity-escaped quotes, brackets and markup."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    out = []
    for c in text:
        if c == "#":
            out.append("#35;")
        elif c == '"':
            out.append("#quot;")
        elif c == "<":
            out.append("#lt;")
        elif c == ">":
            out.append("#gt;")
        elif c in "`":
            out.append("#96;")
        else:
            out.append(c)
    return "".join(out)


def mermaid_label(text: str, limit: int = 80) -> str:
    """``text`` as a quoted Mermaid label: ``"..."``."""
    return f'"{mermaid_text(text, limit)}"'


def md_cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def minutes(value: float) -> str:
    """``90``, ``12.5``: minutes without a useless ``.0``."""
    return f"{value:g}" if float(value).is_integer() else f"{value:.1f}"


# ------------------------------------------------------------------------------------------ content


def suggestions(analysis: Analysis) -> list[str]:
    """Advice a person can act on: files and resources that serialize many tasks, more agents, files."""
    out: list[str] = []
    involved: dict[str, set[str]] = defaultdict(set)
    subjects = {(c.a, c.b): c.subjects for c in analysis.conflicts}
    resources = {r for t in analysis.plan.tasks for r in t.resources}
    for point in analysis.serialization_points:
        for subject in subjects.get((point.tasks[0], point.tasks[1]), ()):
            involved[subject].update(point.tasks)
    ranked = sorted(involved.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    order: Callable[[str], int] | None = None
    for subject, tasks in ranked:
        if len(tasks) < 3:
            break
        order = order or _plan_order(analysis)
        who = enumerate_items(sorted(tasks, key=order), limit=4)
        if subject in resources:
            out.append(f"{subject} serializes {len(tasks)} tasks ({who}): give each task its own copy of it")
        else:
            out.append(
                f"{subject} serializes {len(tasks)} tasks ({who}): split it so each task writes its own file"
            )
        if len(out) >= 5:
            break
    unlimited, peak = unlimited_agents(analysis)
    if peak > analysis.max_agents and unlimited < analysis.estimates.practical:
        agents = "1 agent runs" if analysis.max_agents == 1 else f"{analysis.max_agents} agents run"
        out.append(
            f"up to {peak} tasks could run at once but only {agents}: with --max-agents {min(peak, 64)} "
            f"these waves would take {minutes(unlimited)} minutes instead of "
            f"{minutes(analysis.estimates.practical)}"
        )
    missing = [t.id for t in analysis.plan.tasks if not t.is_gate and not t.files]
    if missing and len(missing) < len(analysis.plan.tasks):
        out.append(
            f"predict the files of {enumerate_items(missing, limit=5)} so their conflicts can be checked"
        )
    return out


def unlimited_agents(analysis: Analysis) -> tuple[float, int]:
    """The practical estimate with unlimited agents, and how many tasks would then run at once at most."""
    by_id = analysis.plan.by_id
    total, peak = 0.0, 0
    for wave in analysis.waves:
        events: list[tuple[float, int]] = []
        longest = 0.0
        for group in wave.groups:
            finish: dict[str, float] = {}
            for tid in group.tasks:
                start = max((finish[p] for p in group.after.get(tid, ())), default=0.0)
                finish[tid] = start + by_id[tid].estimate
                if finish[tid] > start:
                    events += [(start, 1), (finish[tid], -1)]
                longest = max(longest, finish[tid])
        running = 0
        for _, delta in sorted(events):
            running += delta
            peak = max(peak, running)
        total += longest
    return total, peak


def _plan_order(analysis: Analysis) -> Callable[[str], int]:
    pos = {t.id: i for i, t in enumerate(analysis.plan.tasks)}
    return pos.__getitem__


def mermaid_flowchart(analysis: Analysis) -> str:
    """Waves as subgraphs, groups of several tasks nested in them, dependencies, conflicts dotted."""
    plan = analysis.plan
    by_id = plan.by_id
    lines = ["flowchart TB"]
    for wave in analysis.waves:
        wid = f"W{wave.index}"
        lines.append(f'    subgraph {wid}["Wave {wave.index}"]')
        for group in wave.groups:
            indent = "        "
            if len(group.tasks) > 1:
                lines.append(f"        subgraph {mermaid_id(group.name, 'g')}[{mermaid_label(group.name)}]")
                indent += "    "
            for tid in group.tasks:
                task = by_id[tid]
                label = f"{tid}: {task.title} ({minutes(task.estimate)} min)"
                shape = f"{{{{{mermaid_label(label)}}}}}" if task.is_gate else f"[{mermaid_label(label)}]"
                lines.append(f"{indent}{mermaid_id(tid, 't')}{shape}")
            if len(group.tasks) > 1:
                lines.append("        end")
        lines.append("    end")
    for task in plan.tasks:
        for dep in dict.fromkeys(task.depends_on):
            lines.append(f"    {mermaid_id(dep, 't')} --> {mermaid_id(task.id, 't')}")
    for c in analysis.conflicts:
        kind = (
            "same resource"
            if c.reason.startswith("both use")
            else ("same file" if c.reason.startswith("both write") else "overlapping files")
        )
        lines.append(f'    {mermaid_id(c.a, "t")} -. "{kind}" .- {mermaid_id(c.b, "t")}')
    for wave in analysis.waves:
        color = WAVE_COLORS[(wave.index - 1) % len(WAVE_COLORS)]
        text = "#000" if color in ("#22c55e", "#f59e0b", "#14b8a6") else "#fff"
        lines.append(f"    style W{wave.index} fill:{color},color:{text}")
    return "\n".join(lines)


def analysis_markdown(analysis: Analysis) -> str:
    """The whole ``parallelization-analysis.md``."""
    plan, est = analysis.plan, analysis.estimates
    by_id = plan.by_id
    title = plan.feature or "plan"
    out = [f"# Parallelization analysis: {title}", ""]
    out.append(
        f"{len(plan.tasks)} tasks in {len(analysis.waves)} waves; "
        f"at most {analysis.max_agents} agents at once; estimates in minutes."
    )
    out += ["", "## Waves", ""]
    for wave in analysis.waves:
        out.append(f"### Wave {wave.index}")
        out.append("")
        for group in wave.groups:
            ordered = any(group.after.get(t) for t in group.tasks)
            how = "one after the other where ordered" if ordered else "in parallel"
            kind = "gate" if group.gate else ("group" if len(group.tasks) > 1 else "task")
            items = ", ".join(f"`{t}` {by_id[t].title} ({minutes(by_id[t].estimate)})" for t in group.tasks)
            line = f"- **{group.name}** ({kind}): {items}"
            if len(group.tasks) > 1:
                line += f"; {how}"
                chains = [
                    f"`{t}` after {', '.join(f'`{p}`' for p in group.after[t])}"
                    for t in group.tasks
                    if group.after.get(t)
                ]
                if chains:
                    line += " (" + "; ".join(chains) + ")"
            out.append(line)
        out.append("")
    out += ["## Dependency graph", ""]
    if len(plan.tasks) <= MERMAID_MAX_TASKS:
        out += [
            "Solid arrows are dependencies; dotted lines join tasks that must not run at the same time.",
            "",
        ]
        out += ["```mermaid", mermaid_flowchart(analysis), "```", ""]
    else:
        out += [f"(Omitted: {len(plan.tasks)} tasks are more than a diagram can show.)", ""]
    out += ["## Estimates", "", "| Schedule | Minutes | Speedup vs serial | Notes |", "|---|---:|---:|---|"]
    rows = [
        ("Serial", est.serial, "every task one after another"),
        (
            "Groups one at a time",
            est.groups_sequential,
            "each wave's groups in turn, a group's tasks in parallel",
        ),
        ("Theoretical", est.theoretical, "dependencies only, unlimited agents (the critical path)"),
        ("Practical", est.practical, f"after conflicts, at most {analysis.max_agents} agents at once"),
    ]
    for name, value, note in rows:
        out.append(f"| {name} | {minutes(value)} | {est.speedup(value):.2f}x | {note} |")
    path = " → ".join(f"`{t}`" for t in analysis.critical_path)
    out += ["", f"Critical path ({minutes(est.theoretical)} min): {path}", ""]
    out += ["## Serialization points", ""]
    if analysis.serialization_points:
        out += ["| Tasks | Reason | Resolution |", "|---|---|---|"]
        for p in analysis.serialization_points:
            res = p.resolution + (f" (`{p.moved}` moved)" if p.moved else "")
            out.append(f"| {md_cell(', '.join(p.tasks))} | {md_cell(p.reason)} | {md_cell(res)} |")
    else:
        out.append("None: no two tasks of one wave conflict.")
    out += ["", "## Suggestions", ""]
    out += [f"- {md_cell(s)}" for s in analysis.suggestions] or ["None."]
    if analysis.warnings:
        out += ["", "## Warnings", ""]
        out += [f"- {md_cell(w)}" for w in analysis.warnings]
    return "\n".join(out) + "\n"
