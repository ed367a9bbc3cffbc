"""Commands that look at runs: status, review, logs, land, clean (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
