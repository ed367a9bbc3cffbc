"""The planner: reads the repository and drafts a plan, which arrives only through ``submit_plan``.

A submitted plan that fails validation goes back to the model as a tool error naming the problem, up to
``MAX_SUBMISSIONS`` times; then the planner fails with that problem.
"""

from __future__ import annotations

from pathlib import Path

from agentwaves.agents.backend import PlanResult
from agentwaves.agents.loop import AgentFailed, Limits, LoopHooks, NoHooks, ToolReply, Transcript, run_loop
from agentwaves.agents.repomap import repo_map, tracked_files
from agentwaves.agents.tools import WorktreeTools
from agentwaves.llm.base import LLM, CallContext, ToolSpec, ToolUseBlock
from agentwaves.plan.load import plan_from_data
from agentwaves.plan.model import Plan, PlanError, Task
from agentwaves.prompts import render
from agentwaves.redact import Redactor
from agentwaves.sandbox.bwrap import NoSandbox

MAX_SUBMISSIONS = 3
READ_TOOLS = {"read_file", "list_files", "search"}


class PlannerFailed(AgentFailed):
    """The planner gave up (or its model did)."""

    exit_code = 1


def submit_plan_spec() -> ToolSpec:
    schema = Plan.model_json_schema()
    return ToolSpec(
        name="submit_plan",
        description="Submit the finished plan. Its input is the whole plan: {feature, tasks: [...]}. "
        "Returns an error naming the problem if the plan is invalid; fix it and submit again.",
        input_schema=schema,
    )


def add_gate(plan: Plan, command: str) -> Plan:
    """Append a final gate running ``command`` after every task, unless the plan has a gate already."""
    if any(t.kind == "gate" for t in plan.tasks):
        return plan
    depended = {d for t in plan.tasks for d in t.depends_on}
    sinks = [t.id for t in plan.tasks if t.id not in depended]
    gate_id = "tests" if "tests" not in plan.by_id else "gate-tests"
    gate = Task(id=gate_id, title=f"Run {command}", kind="gate", command=command, depends_on=sinks)
    return Plan(feature=plan.feature, tasks=[*plan.tasks, gate])


def check_submission(data: object, feature: str, submissions: int) -> tuple[Plan | None, str]:
    """Validate submission number ``submissions``: the plan, or None and the problem to send back;
    :class:`PlannerFailed` once ``MAX_SUBMISSIONS`` were invalid."""
    if not isinstance(data, dict):
        problem = "the plan must be a JSON object {feature, tasks: [...]}"
    else:
        data = dict(data)
        data.setdefault("feature", feature)
        try:
            return plan_from_data(data, "submitted plan"), ""
        except PlanError as exc:
            problem = str(exc)
    if submissions >= MAX_SUBMISSIONS:
        raise PlannerFailed(f"the planner submitted an invalid plan {submissions} times; last: {problem}")
    return None, problem


def plan_feature(
    llm: LLM,
    repo: Path,
    feature: str,
    *,
    limits: Limits | None = None,
    hooks: LoopHooks | None = None,
    transcript_path: Path | None = None,
    lessons: str = "",
    transcript: Transcript | None = None,
) -> PlanResult:
    files = tracked_files(repo)
    reader = WorktreeTools(repo, sandbox=NoSandbox())
    specs = [s for s in reader.specs() if s.name in READ_TOOLS] + [submit_plan_spec()]
    submissions = 0
    last_error = ""

    def handle(use: ToolUseBlock) -> ToolReply:
        nonlocal submissions, last_error
        if use.name == "submit_plan":
            submissions += 1
            plan, last_error = check_submission(use.input, feature, submissions)
            if plan is None:
                return ToolReply(f"invalid plan: {last_error}", is_error=True)
            return ToolReply("plan accepted", finished=True, data={"plan": plan})
        if use.name not in READ_TOOLS:
            return ToolReply(
                f"unknown tool {use.name!r}: the planner may only read and submit", is_error=True
            )
        out = reader.execute(use.name, use.input)
        return ToolReply(out.content, out.is_error)

    ctx = CallContext(agent="planner", hints={"feature": feature, "files": files})
    result = run_loop(
        llm,
        system=render("planner", repo_map=repo_map(repo, files)),
        first_message=f"Plan this feature:\n\n{feature}" + (f"\n\n{lessons}" if lessons else ""),
        tools=specs,
        handle=handle,
        ctx=ctx,
        limits=limits or Limits(max_turns=25),
        hooks=hooks or NoHooks(),
        transcript=transcript or Transcript(transcript_path, Redactor()),
        finish_tool="submit_plan",
    )
    return PlanResult(plan=result.finish.data["plan"], usage=result.usage, submissions=submissions)
