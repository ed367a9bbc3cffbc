"""Printing tables so that piped output never cuts a value (``$0.01…``, ``f15d4…``)."""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.measure import Measurement

WIDEST = 100_000


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
