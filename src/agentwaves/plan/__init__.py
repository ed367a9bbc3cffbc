"""Plans and their analysis: load a plan, then :func:`analyze` it into waves of conflict-free groups."""

from agentwaves.plan.conflicts import Conflict
from agentwaves.plan.graph import Analysis, Estimates, Group, SerializationPoint, Wave, analyze
from agentwaves.plan.load import dump_plan_yaml, load_plan, parse_pipeline, parse_plan_yaml, plan_from_data
from agentwaves.plan.model import Plan, PlanError, Task

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
