"""Plans and their analysis: load a plan, then :func:`analyze` it into waves of conflict-free groups."""

from agentwaves.plan.conflicts import Conflict
from agentwaves.plan.graph import (
    DEFAULT_MAX_AGENTS,
    Analysis,
    Estimates,
    Group,
    SerializationPoint,
    Wave,
    build_analysis,
)
from agentwaves.plan.load import dump_plan_yaml, load_plan, parse_pipeline, parse_plan_yaml, plan_from_data
from agentwaves.plan.model import Plan, PlanError, Task
from agentwaves.plan.report import suggestions

__all__ = [
    "Analysis",
    "Conflict",
    "Estimates",
    "Group",
    "Plan",
    "PlanError",
    "SerializationPoint",
    "Task",
    "Wave",
    "analyze",
    "dump_plan_yaml",
    "load_plan",
    "parse_pipeline",
    "parse_plan_yaml",
    "plan_from_data",
]


def analyze(plan: Plan, max_agents: int = DEFAULT_MAX_AGENTS) -> Analysis:
    """Waves, groups, conflicts resolved, critical path, estimates and advice for ``plan``."""
    analysis = build_analysis(plan, max_agents)
    analysis.suggestions = suggestions(analysis)
    return analysis
