"""`agentwaves analyze`: placeholder until the plan analysis lands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
