"""Shared bits for the plan tests: paths of the sample plans and small plan builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentwaves.plan import Plan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def make_plan(*tasks: dict[str, Any], feature: str = "test") -> Plan:
    """A plan from task dicts; ``title`` defaults to the id."""
    return Plan.model_validate({"feature": feature, "tasks": [{"title": str(t["id"]), **t} for t in tasks]})
