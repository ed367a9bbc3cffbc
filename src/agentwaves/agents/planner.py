"""The planner: reads the repository and drafts a plan, which arrives only through ``submit_plan``.

A submitted plan that fails validation goes back to the model as a tool error naming the problem, up to
``MAX_SUBMISSIONS`` times; then the planner fails with that problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentwaves.agents.backend import PlanRequest, PlanResult
from agentwaves.agents.loop import AgentFailed, Limits, LoopHooks, NoHooks, ToolReply, Transcript, run_loop
from agentwaves.agents.repomap import repo_map, tracked_files
from agentwaves.agents.tools import WorktreeTools
from agentwaves.llm.base import LLM, CallContext, ToolSpec, ToolUseBlock, Usage
from agentwaves.llm.retry import OnRetry
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


@dataclass
class DraftOutcome:
    plan: Plan
    plan_path: Path
    analysis_path: Path
    usage: Usage
    submissions: int
    previous: Path | None = None  # where the plan this one replaced was kept (plan.yaml.1)
    gate_note: str | None = None  # the default gate ``plan`` proposed, and why
    calibrated: Plan | None = None  # the plan with estimates scaled by the history (None: no history)
    calibration: dict[str, object] | None = None


def draft_plan(
    repo: Path,
    feature: str,
    overrides: Mapping[str, object],
    out: Path | None = None,
    on_retry: OnRetry | None = None,
) -> DraftOutcome:
    """`agentwaves plan`: plan ``feature`` for ``repo`` and write the plan and its analysis."""
    from agentwaves.agents.backend import BackendSetup, make_backend
    from agentwaves.config import load_config
    from agentwaves.git.ops import ensure_state_dir, find_repo_root
    from agentwaves.plan import analyze
    from agentwaves.plan.housekeeping import keep_previous
    from agentwaves.plan.load import dump_plan_yaml
    from agentwaves.plan.report import analysis_markdown
    from agentwaves.state.history import PLANNER_HEADER, history_path, read_history
    from agentwaves.state.stats import calibrate, lessons

    if not feature.strip():
        raise PlanError('the feature text is empty: say what to build, e.g. agentwaves plan "add CSV export"')
    root = find_repo_root(repo)
    config = load_config(root, dict(overrides))
    backend = make_backend(BackendSetup(config, on_retry=on_retry))
    state_dir = ensure_state_dir(root)
    records = read_history(history_path(state_dir))
    transcript = Transcript(state_dir / "logs" / "planner.log", Redactor())
    result = backend.plan(PlanRequest(root, feature, transcript, lessons=lessons(records)))
    plan, gate_note = _final_gate(root, result.plan, config.gate_command)
    calibrated, calibration = calibrate(plan, records)
    plan_path = out or state_dir / "plan.yaml"
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    previous = keep_previous(plan_path)
    plan_path.write_text(f"{PLANNER_HEADER}{backend.model or backend.name}\n" + dump_plan_yaml(plan))
    analysis_path = state_dir / "parallelization-analysis.md"
    shown = calibrated if calibration["scaled"] else plan
    analysis_path.write_text(analysis_markdown(analyze(shown, max_agents=config.max_agents)))
    return DraftOutcome(
        plan,
        plan_path,
        analysis_path,
        result.usage,
        result.submissions,
        previous,
        gate_note,
        calibrated if calibration["scaled"] else None,
        calibration,
    )


def _final_gate(root: Path, plan: Plan, command: str | None) -> tuple[Plan, str | None]:
    """The plan with its final gate: ``gate_command`` if set (``""``: none), else the repository's obvious
    test command; and a note saying where a proposed gate came from."""
    from agentwaves.plan.housekeeping import detect_test_command

    if command is not None:
        return (add_gate(plan, command) if command.strip() else plan), None
    if any(t.kind == "gate" for t in plan.tasks):
        return plan, None
    found = detect_test_command(root)
    if found is None:
        return plan, None
    gated = add_gate(plan, found[0])
    note = (
        f"final gate `{found[0]}` proposed ({found[1]}); set gate_command in agentwaves.yaml to change it, "
        'or gate_command: "" for none'
    )
    return gated, note
