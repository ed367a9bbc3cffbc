"""`agentwaves plan`: choose the agent, let it plan, add the final gate, keep the previous plan, write the
plan and its analysis, and learn from the history of earlier runs (estimates, past misses)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentwaves.agents.backend import PlanRequest
from agentwaves.agents.loop import Transcript
from agentwaves.agents.planner import add_gate
from agentwaves.llm.base import Usage
from agentwaves.llm.retry import OnRetry
from agentwaves.plan.model import Plan, PlanError
from agentwaves.redact import Redactor


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
