"""The terminal: one place that makes rich consoles and prints tables (piped, no value is cut), for every
renderer and the live display."""

from __future__ import annotations

import sys

from rich.console import Console, RenderableType
from rich.measure import Measurement

WIDEST = 100_000


def console(stderr: bool = False) -> Console:
    return Console(file=sys.stderr if stderr else sys.stdout, highlight=False, soft_wrap=True)


def print_table(out: Console, table: RenderableType) -> None:
    """Print ``table`` at the console's width on a terminal; piped, at least as wide as its widest row,
    so every value is printed whole (a pipe has no width to fit)."""
    if out.is_terminal:
        out.print(table)
        return
    natural = Measurement.get(out, out.options.update_width(WIDEST), table).maximum
    if natural <= out.width:
        out.print(table)
        return
    saved = out.width
    out.width = natural
    try:
        out.print(table)
    finally:
        out.width = saved
