"""Rendering of ``agentwaves review`` (per-wave commits, diffs per task) and of task logs (``logs``)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.padding import Padding
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from agentwaves.ui.feedback import history_lines, review_wave_lines
from agentwaves.ui.inert import inert_data
from agentwaves.ui.status import badge, out_console, usage_line
from agentwaves.ui.term import print_table


def _count(value: int | None) -> str:
    return "bin" if value is None else str(value)


def render_review(data: dict[str, Any], console: Console | None = None, *, diff: bool = False) -> None:
    out = out_console(console)
    data = inert_data(data)  # agent text (summaries, file names, diffs) shown, never obeyed
    out.print(Text.assemble(("Review of run ", "bold"), (data["run"], "bold"), f"  branch {data['branch']}"))
    for wave in data["waves"]:
        _render_wave(out, wave, diff)
    history = history_lines(data)
    if history:
        out.print(Rule(Text("Replaced wave commits (history)", style="bold"), align="left"))
        for line in history:
            out.print(line)
    if not diff and data["waves"]:
        first = data["waves"][0]["index"]
        out.print(
            Text(f"\nDiffs per task: agentwaves review {data['run']} --wave {first} --diff", style="dim")
        )


def _render_wave(out: Console, wave: dict[str, Any], diff: bool) -> None:
    out.print()
    commit = wave["commit"][:10] if wave.get("commit") else "not committed"
    groups = ", ".join(g["name"] for g in wave["groups"])
    title = Text.assemble((f"Wave {wave['index']}", "bold"), f"  {commit}  ")
    title.append_text(badge(wave["state"]))
    title.append(f"  groups: {groups}  tasks: {', '.join(t['id'] for t in wave['tasks'])}")
    out.print(Rule(title, align="left"))
    if wave["files"]:
        table = Table(show_header=True, box=None, padding=(0, 2))
        table.add_column("File")
        table.add_column("", justify="center")
        table.add_column("+", justify="right", style="green")
        table.add_column("-", justify="right", style="red")
        for f in wave["files"]:
            table.add_row(Text(f["path"]), f["status"], _count(f["added"]), _count(f["removed"]))
        print_table(out, table)
        n = len(wave["files"])
        out.print(f"{n} file{'s' if n != 1 else ''} changed, +{wave['added']} -{wave['removed']}")
    elif wave.get("commit"):
        out.print("No file changes.")
    for item in wave["undeclared"]:
        out.print(Text(f"undeclared writes by {item['task']}: {', '.join(item['files'])}", style="yellow"))
    for item in wave.get("refused", []):
        files = ", ".join(item["files"])
        out.print(Text(f"writes by {item['task']} refused (leased elsewhere): {files}", style="yellow"))
    for g in wave["groups"]:
        if g.get("resolved"):
            out.print(
                Text(f"conflicts resolved for {g['name']}: {', '.join(g['resolved'])}", style="magenta")
            )
        if g.get("conflicts"):
            out.print(Text(f"unresolved conflicts in {g['name']}: {', '.join(g['conflicts'])}", style="red"))
        if g.get("resolver_refused"):
            refused = ", ".join(g["resolver_refused"])
            out.print(
                Text(f"resolver changes outside the conflicts refused for {g['name']}: {refused}", "red")
            )
    for line in review_wave_lines(wave):
        out.print(line)
    out.print(Text.assemble(("Tokens: ", "bold"), usage_line(wave["usage"])))
    handoff = "\n".join(ln for ln in wave.get("handoff", "").splitlines() if not ln.startswith("## Wave "))
    if handoff.strip():
        out.print(Text("Handoff:", style="bold"))
        out.print(Padding(Markdown(handoff, hyperlinks=False), (0, 0, 0, 2)))  # no OSC 8 links
    if diff:
        _render_patches(out, wave)


def _render_patches(out: Console, wave: dict[str, Any]) -> None:
    for g in wave["groups"]:
        out.print(Text(f"\nGroup {g['name']}", style="bold cyan") + Text(f"  {g.get('branch') or ''}", "dim"))
        for tid in g["tasks"]:
            task = next(t for t in wave["tasks"] if t["id"] == tid)
            sha = (task.get("commit") or "")[:10]
            out.print(Rule(Text(f"task {tid}: {task['title']}  {sha}", style="bold"), align="left"))
            if task.get("summary"):
                out.print(Text(task["summary"].strip(), style="italic"))
            patch = task.get("patch")
            if task["kind"] == "gate":
                out.print(Text("(gate: no changes of its own)", style="dim"))
            elif patch is None:
                out.print(Text("(no commit available: the task did not finish, or its branch was cleaned)"))
            elif not patch.strip():
                out.print(Text("(empty commit)", style="dim"))
            else:
                _print_patch(out, patch)


def _print_patch(out: Console, patch: str) -> None:
    """A patch as ``git diff | cat`` would print it when piped (plain, no line cut or wrapped); colored
    and wrapped at the terminal's width on a terminal, so a long line continues on the next one."""
    if not out.is_terminal:
        out.file.write(patch if patch.endswith("\n") else patch + "\n")
        out.file.flush()
        return
    syntax = Syntax(patch, "diff", theme="ansi_dark", background_color="default", word_wrap=True)
    out.print(syntax, soft_wrap=False)


# ------------------------------------------------------------------------------------------------ logs


def _brief(data: dict[str, Any]) -> str:
    args = data.get("input") or {}
    if not isinstance(args, dict):
        return str(args)[:100]
    for key in ("path", "command", "pattern", "summary"):
        if args.get(key):
            return str(args[key]).splitlines()[0][:100]
    return json.dumps(args, default=str)[:100]


def _first_line(text: Any, limit: int = 120) -> str:
    lines = str(text).strip().splitlines()
    first = lines[0] if lines else ""
    more = " …" if len(lines) > 1 or len(first) > limit else ""
    return first[:limit] + more


def render_log_record(rec: dict[str, Any], console: Console | None = None) -> None:
    """One transcript record, readably: headers for messages, one line per tool call, text as is."""
    out = out_console(console)
    rec = inert_data(rec)
    kind, data = rec.get("kind"), rec.get("data")
    if kind == "text":
        out.print(Text(str(data)))
    elif kind == "attempt":
        out.print(Rule(Text(f"attempt {data}", style="bold"), align="left"))
    elif kind == "system":
        out.print(Text(f"[system prompt: {len(str(data).splitlines())} lines]", style="dim"))
    elif kind == "user":
        out.print(Text("── user ──", style="bold blue"))
        out.print(Text(data if isinstance(data, str) else json.dumps(data, default=str)[:2000]))
    elif kind == "assistant":
        blocks = data if isinstance(data, list) else [data]
        texts = [b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
        if any(t.strip() for t in texts):
            out.print(Text("── assistant ──", style="bold green"))
            for t in texts:
                out.print(Text(t.strip()))
    elif kind == "tool" and isinstance(data, dict):
        ok = not data.get("is_error")
        line = Text("  → ", style="green" if ok else "red")
        line.append(str(data.get("name")), style="bold")
        line.append(f" {_brief(data)}")
        line.append(f"  ⇒ {_first_line(data.get('result', ''))}", style="dim" if ok else "red")
        out.print(line)
    elif kind in ("error", "failed"):
        out.print(Text(f"{kind.upper()}: {data}", style="bold red"))
    else:
        out.print(Text(f"[{kind}] {_first_line(json.dumps(data, default=str), 200)}", style="dim"))
