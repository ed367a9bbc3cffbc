"""Rendering of ``agentwaves status`` and ``agentwaves runs``
(dicts from :mod:`agentwaves.review.inspect`)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentwaves.ui.feedback import status_group_lines
from agentwaves.ui.inert import inert_data
from agentwaves.ui.live import STYLES, cost_text, fmt_seconds
from agentwaves.ui.term import print_table

RUN_STYLES = {**STYLES, "interrupted": ("■", "yellow"), "unreadable": ("?", "red")}


def out_console(console: Console | None) -> Console:
    if console is not None:
        return console
    from agentwaves.ui.term import console as make_console

    return make_console()


def badge(state: str) -> Text:
    icon, style = RUN_STYLES.get(state, ("●", "cyan"))
    return Text(f"{icon} {state}", style=style)


SIMULATED = " (simulated: the fake backend's modelled usage, at real prices)"


def usage_line(usage: dict[str, Any], simulated: bool = False) -> str:
    """Tokens of all four kinds (they add up to the cost) and the cost."""
    return (
        f"{usage.get('input_tokens', 0):,} in, {usage.get('output_tokens', 0):,} out, "
        f"{usage.get('cache_creation_input_tokens', 0):,} cache write, "
        f"{usage.get('cache_read_input_tokens', 0):,} cache read; {cost_text(usage)}"
        + (SIMULATED if simulated else "")
    )


def _task_line(task: dict[str, Any], interrupted: bool) -> Text:
    state = task["state"]
    if task.get("stuck_for_s") is not None:
        state = "stuck"
    elif interrupted and state == "running":
        state = "interrupted"
    line = Text("      ")
    line.append(task["id"], style="bold")
    line.append(" ")
    line.append_text(badge(state))
    if task.get("elapsed_s") is not None:
        line.append(f" {fmt_seconds(task['elapsed_s'])}", style="dim")
    if task.get("attempts", 0) > 1:
        line.append(f" (attempt {task['attempts']})", style="yellow")
    if task.get("stuck_for_s") is not None:
        line.append(f" — stuck for {round(task['stuck_for_s'])}s", style="bold red")
    if task["state"] == "failed" and task.get("error"):
        line.append(f" — {task['error']}", style="red")
    return line


def render_status(data: dict[str, Any], console: Console | None = None) -> None:
    """The seed's status display: waves, groups with done/total, failures with their logs, the total."""
    out = out_console(console)
    data = inert_data(data)
    head = Text.assemble(("Run ", "bold"), (data["run"], "bold"), "  ")
    head.append_text(badge(data["state"]))
    head.append(f"  branch {data['branch']} (base {data['base'][:7]})", style="dim")
    out.print(head)
    if data.get("feature"):
        out.print(Text.assemble(("Feature: ", "bold"), data["feature"]))
    interrupted = data["state"] == "interrupted"
    for wave in data["waves"]:
        line = Text.assemble((f"\nWave {wave['index']}", "bold"), "  ")
        line.append_text(badge(wave["state"]))
        line.append(f"  {wave['done']}/{wave['total']} tasks", style="dim")
        if wave.get("commit"):
            line.append(f"  commit {wave['commit'][:10]}", style="dim")
        out.print(line)
        for group in wave["groups"]:
            gline = Text("  ")
            gline.append_text(badge(group["state"]))
            gline.append(f"  {group['name']}", style="bold")
            gline.append(f"  ({group['done']}/{group['total']} tasks complete)")
            out.print(gline)
            for task in group["tasks"]:
                if task["state"] in ("running", "failed") or task.get("attempts", 0) > 1:
                    out.print(_task_line(task, interrupted))
            for fline in status_group_lines(group):
                out.print(fline)
            if group["state"] == "failed":
                if group.get("error") and not any(t["state"] == "failed" for t in group["tasks"]):
                    out.print(Text(f"      {group['error']}", style="red"))
                for log in group.get("logs", []):
                    out.print(Text(f"      log: {log}", style="dim"))
    progress = data["progress"]
    out.print(
        Text.assemble(
            ("\nOverall: ", "bold"),
            f"{progress['done']}/{progress['total']} tasks complete ({progress['percent']}%)",
        )
    )
    out.print(Text.assemble(("Tokens: ", "bold"), usage_line(data["usage"], data.get("llm") == "fake")))
    if data.get("error") and data["state"] != "done":
        out.print(Text(f"Error: {data['error']}", style="red"))
    out.print(Text(data["hint"], style="yellow" if data["state"] in ("failed", "interrupted") else "dim"))


def render_runs(data: dict[str, Any], console: Console | None = None) -> None:
    out = out_console(console)
    if not data["runs"]:
        out.print("No runs yet in this repository: start one with `agentwaves execute`.")
        return
    table = Table(title="Runs, oldest first (branch agentwaves/<run>)", title_justify="left", box=box.SIMPLE)
    table.add_column("Run", no_wrap=True)
    table.add_column("State", no_wrap=True)
    table.add_column("Tasks", justify="right")
    table.add_column("Created", no_wrap=True)
    table.add_column("Cost", justify="right")
    table.add_column("Landed")
    for run in data["runs"]:
        if run["state"] == "unreadable":
            table.add_row(run["run"], badge("unreadable"), "", "", "", "")
            continue
        table.add_row(
            run["run"],
            badge(run["state"]),
            f"{run['done']}/{run['total']}",
            str(run["created"])[:16].replace("T", " "),
            cost_text(run, cell=True),
            str(run["landed"])[:10] if run.get("landed") else "",
        )
    print_table(out, table)
