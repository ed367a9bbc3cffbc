"""Reading and writing plans: YAML files, the seed's pipeline table, and data an LLM submitted.

Every failure is a :class:`~agentwaves.plan.model.PlanError` whose message is one line starting with the
source (``plan.yaml: ...``, ``jobs.pipeline:7: ...``). Nothing here lets another exception escape for any
input text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from agentwaves.plan.model import Plan, PlanError, Task, ref_safe_problem

PIPELINE_SUFFIXES = frozenset({".pipeline", ".txt", ".table"})
PIPELINE_COLUMNS = 7
_TASK_FIELDS = tuple(Task.model_fields)


# ------------------------------------------------------------------------------------------- entry points


def load_plan(path: Path) -> Plan:
    """Read a plan file: a pipeline table (by suffix, or when its first row has six '|'), else YAML."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlanError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise PlanError(f"{source}: is a directory, not a plan file") from None
    except OSError as exc:
        raise PlanError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() in PIPELINE_SUFFIXES or looks_like_pipeline(text):
        return parse_pipeline(text, source)
    return parse_plan_yaml(text, source)


def looks_like_pipeline(text: str) -> bool:
    """True when the first line that is neither blank nor a ``#`` comment has exactly six '|'."""
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.count("|") == PIPELINE_COLUMNS - 1
    return False


def parse_plan_yaml(text: str, source: str = "<plan>") -> Plan:
    """Parse and validate a YAML plan."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise PlanError(f"{where}: invalid YAML: {exc.problem or exc.context or 'syntax error'}") from None
    except RecursionError:
        raise PlanError(f"{source}: invalid YAML: nested too deeply") from None
    except Exception as exc:  # PyYAML raises ValueError & co. for some scalars (e.g. a 13th month)
        raise PlanError(f"{source}: invalid YAML: {type(exc).__name__}: {exc}") from None
    if data is None:
        raise PlanError(f"{source}: empty plan (expected a mapping with 'feature' and 'tasks')")
    if not isinstance(data, dict):
        raise PlanError(f"{source}: expected a mapping with 'feature' and 'tasks', got {_type_name(data)}")
    return plan_from_data(data, source)


def plan_from_data(data: dict[str, Any], source: str) -> Plan:
    """Validate already-parsed plan data (e.g. what the planner agent submitted)."""
    if not isinstance(data, dict):
        raise PlanError(f"{source}: expected a mapping with 'feature' and 'tasks', got {_type_name(data)}")
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"{source}: {describe_validation_error(exc, data)}") from None
    except RecursionError:
        raise PlanError(f"{source}: plan is nested too deeply") from None
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{source}: invalid plan: {exc}") from None


def dump_plan_yaml(plan: Plan) -> str:
    """The plan as YAML that :func:`parse_plan_yaml` reads back into an equal plan; defaults are omitted."""
    out: dict[str, Any] = {}
    if plan.feature:
        out["feature"] = plan.feature
    out["tasks"] = [_task_data(t) for t in plan.tasks]
    return yaml.dump(
        out, Dumper=_PlanDumper, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100
    )


# ------------------------------------------------------------------------------------------ pipeline


def parse_pipeline(text: str, source: str = "<pipeline>") -> Plan:
    """Import the seed's pipeline table into a plan, deriving dependencies from the row order.

    A row is ``step | profile | meta | mode | group | minutes | title``. A serial step (group ``-``) runs
    after every step before it; a step of a parallel group runs after the most recent serial step, so
    consecutive groups with no serial step between them land in one wave.
    """
    tasks: list[Task] = []
    line_of: dict[str, int] = {}
    last_serial: str | None = None
    since_serial: list[str] = []  # group steps since the last serial step
    group_closed_at: dict[str, int] = {}  # group -> line of the serial step that ended its run
    open_groups: dict[str, int] = {}  # groups used since the last serial step -> first line
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{lineno}"
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != PIPELINE_COLUMNS:
            raise PlanError(f"{where}: expected {PIPELINE_COLUMNS} '|'-separated columns, got {len(cells)}")
        step, profile, meta, mode, group, minutes, title = cells
        if not re.fullmatch(r"[0-9]+", step) or int(step) == 0:
            raise PlanError(f"{where}: step number must be a positive integer, got {step!r}")
        step = str(int(step))
        if step in line_of:
            raise PlanError(f"{where}: duplicate step {step} (first on line {line_of[step]})")
        estimate = _minutes(minutes, where)
        if not title:
            raise PlanError(f"{where}: the title (column 7) is empty")
        info = {"profile": profile, "column3": meta, "mode": mode}
        if group in ("-", ""):
            depends = [last_serial] if last_serial is not None else []
            depends += since_serial
            for g in open_groups:
                group_closed_at[g] = lineno
            open_groups.clear()
            since_serial = []
            last_serial = step
            task_group = None
        else:
            problem = ref_safe_problem(group, "group name")
            if problem:
                raise PlanError(f"{where}: {problem}")
            if group in group_closed_at and group not in open_groups:
                raise PlanError(
                    f"{where}: group {group!r} was ended by the serial step on line "
                    f"{group_closed_at[group]}; a group's steps must be consecutive"
                )
            open_groups.setdefault(group, lineno)
            depends = [last_serial] if last_serial is not None else []
            since_serial.append(step)
            task_group = group
        try:
            task = Task(
                id=step, title=title, depends_on=depends, group=task_group, estimate=estimate, meta=info
            )
        except ValidationError as exc:
            raise PlanError(f"{where}: {describe_validation_error(exc, None, prefix=False)}") from None
        tasks.append(task)
        line_of[step] = lineno
    if not tasks:
        raise PlanError(
            f"{source}: no steps (expected rows 'step | profile | - | mode | group | min | title')"
        )
    return plan_from_data({"tasks": [t.model_dump() for t in tasks]}, source)


def _minutes(cell: str, where: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise PlanError(f"{where}: minutes (column 6) must be a number, got {cell!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise PlanError(f"{where}: minutes (column 6) must be a non-negative number, got {cell!r}")
    return value


# ----------------------------------------------------------------------------------------- helpers


def describe_validation_error(exc: ValidationError, data: Any, *, prefix: bool = True) -> str:
    """The first error of ``exc`` as one line: ``tasks[2].estimate (task 'csv'): must not be negative``."""
    errors = exc.errors()
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return "invalid plan"
    err = errors[0]
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    for lead in ("Value error, ", "Assertion failed, "):
        if msg.startswith(lead):
            msg = msg[len(lead) :]
    if kind == "extra_forbidden" and loc:
        field, loc = loc[-1], loc[:-1]
        known = ", ".join(_TASK_FIELDS if loc else ("feature", "tasks"))
        msg = f"unknown field {str(field)!r} (known: {known})"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        msg = "expected a mapping" + (" with at least 'id' and 'title'" if len(loc) == 2 else "")
    elif kind == "missing" and loc:
        field, loc = loc[-1], loc[:-1]
        msg = f"missing required field {str(field)!r}"
    where = _format_loc(loc) if prefix else _format_loc(loc[2:] if loc[:1] == ("tasks",) else loc)
    task_id = _task_id_at(data, loc)
    if task_id is not None and f"{task_id!r}" not in msg:
        where = f"{where} (task {task_id!r})" if where else f"task {task_id!r}"
    return f"{where}: {msg}" if where else msg


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part)
            name = name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else repr(name)
            out += f".{name}" if out else name
    return out


def _task_id_at(data: Any, loc: tuple[Any, ...]) -> str | None:
    if len(loc) < 2 or loc[0] != "tasks" or not isinstance(loc[1], int) or not isinstance(data, dict):
        return None
    tasks = data.get("tasks")
    if isinstance(tasks, list) and 0 <= loc[1] < len(tasks) and isinstance(tasks[loc[1]], dict):
        task_id = tasks[loc[1]].get("id")
        if isinstance(task_id, str | int) and not isinstance(task_id, bool):
            return str(task_id)
    return None


def _type_name(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _task_data(task: Task) -> dict[str, Any]:
    data: dict[str, Any] = {"id": task.id, "title": task.title}
    defaults = {name: f.get_default(call_default_factory=True) for name, f in Task.model_fields.items()}
    for name in _TASK_FIELDS:
        if name in ("id", "title"):
            continue
        value = getattr(task, name)
        if value == defaults[name]:
            continue
        if name == "estimate" and float(value).is_integer():
            value = int(value)
        if isinstance(value, BaseModel):
            value = value.model_dump(exclude_defaults=True)
        data[name] = list(value) if isinstance(value, list) else value
    return data


class _PlanDumper(yaml.SafeDumper):
    """A SafeDumper that writes multi-line strings (prompts) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_PlanDumper.add_representer(str, _represent_str)
