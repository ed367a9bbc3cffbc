"""The plan: tasks with dependencies, predicted writes and shared resources.

A plan is what the planner writes to ``.agentwaves/plan.yaml`` and what people edit by hand. These models
validate it completely (unique ids, known dependencies, no cycles between tasks or between groups, gates
with commands), so everything downstream can trust a ``Plan`` it is given. This module knows nothing of
git, LLMs or files on disk.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentwaves.errors import UsageError
from agentwaves.plan.compute import RayResources

TASK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
GROUP_NAME_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+-]*$")
MAX_NAME_LEN = 100


class PlanError(UsageError):
    """A plan that cannot be used. The message is one line that names the problem."""

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(one_line(message), exit_code=exit_code)


def one_line(text: str) -> str:
    """``text`` with every line break (any that ``str.splitlines`` knows) folded into a space."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def ref_safe_problem(name: str, what: str) -> str | None:
    """Why ``name`` cannot be used as one git ref component (a branch name part), or None if it can."""
    pattern = TASK_ID_RE if what == "task id" else GROUP_NAME_RE
    if what == "task id":
        allowed = "ASCII letters, digits, '_', '-', '.', starting with a letter or digit"
    else:
        allowed = "ASCII letters, digits, '_', '-', '.', '+', not starting with '.' or '-'"
    if not pattern.match(name):
        return f"invalid {what} {name!r}: use {allowed}"
    if len(name) > MAX_NAME_LEN:
        return f"invalid {what} {name[:20]!r}...: at most {MAX_NAME_LEN} characters"
    if ".." in name or name.endswith(".") or name.endswith(".lock"):
        return f"invalid {what} {name!r}: no '..', and no '.' or '.lock' at the end"
    return None


def _as_list(v: Any) -> Any:
    """Accept a single string where a list is expected (``depends_on: schema``)."""
    if isinstance(v, str | int) and not isinstance(v, bool):
        v = [v]
    if isinstance(v, list):
        return [str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v]
    return v


def _relative_path(path: str) -> bool:
    norm = path.replace("\\", "/")
    return bool(norm.strip()) and not norm.startswith("/") and ".." not in norm.split("/")


class Task(BaseModel):
    """One unit of work for one agent (``kind: task``) or a validation command (``kind: gate``)."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    id: str = Field(
        description="Unique id: ASCII letters, digits, '_', '-', '.'; starts with a letter or digit."
    )
    title: str = Field(description="One line saying what the task does.")
    prompt: str | None = Field(
        default=None, description="What the agent is asked to do; the title if omitted."
    )
    depends_on: list[str] = Field(default_factory=list, description="Ids of tasks that must finish first.")
    files: list[str] = Field(
        default_factory=list,
        description="Predicted writes, relative to the repository: paths, directories (trailing /) or globs.",
    )
    resources: list[str] = Field(
        default_factory=list,
        description="Shared state two tasks must not use at once, e.g. 'db:invoices', 'port:8080'.",
    )
    group: str | None = Field(default=None, description="Name of the group (worktree) the task runs in.")
    kind: Literal["task", "gate"] = Field(
        default="task", description="'task' (an agent) or 'gate' (a command)."
    )
    command: str | None = Field(default=None, description="Shell command of a gate; required for gates.")
    gate_junit: str | None = Field(
        default=None, description="Gate: the JUnit XML report its command writes (relative path)."
    )
    repair_attempts: int | None = Field(
        default=None, ge=0, le=10, description="Gate: repairs of a group that breaks it (default: config)."
    )
    estimate: float = Field(default=1, description="Predicted duration in minutes; default 1.")
    meta: dict[str, str] = Field(
        default_factory=dict,
        description="Free-form metadata kept from imports (e.g. a pipeline's agent profile); not analysed.",
    )
    ray: RayResources | None = Field(
        default=None, description="Resources the task reserves on a Ray node (executor ray; docs/ray.md)."
    )

    @field_validator("id", "group", "title", mode="before")
    @classmethod
    def _int_to_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("depends_on", "files", "resources", mode="before")
    @classmethod
    def _single_to_list(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, v: str) -> str:
        problem = ref_safe_problem(v, "task id")
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("group")
    @classmethod
    def _valid_group(cls, v: str | None) -> str | None:
        if v is not None:
            problem = ref_safe_problem(v, "group name")
            if problem:
                raise ValueError(problem)
        return v

    @field_validator("title")
    @classmethod
    def _nonempty_title(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("title must not be empty")
        return v

    @field_validator("estimate")
    @classmethod
    def _nonnegative(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"estimate must be a finite number of minutes (got {v!r})")
        if v < 0:
            raise ValueError(f"estimate must not be negative (got {v:g})")
        return v

    @field_validator("files")
    @classmethod
    def _relative_files(cls, v: list[str]) -> list[str]:
        for f in v:
            norm = f.replace("\\", "/")
            if not norm.strip():
                raise ValueError("file entries must not be empty")
            if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
                raise ValueError(f"file {f!r} must be relative to the repository")
            if ".." in norm.split("/"):
                raise ValueError(f"file {f!r} points outside the repository")
        return v

    @field_validator("resources")
    @classmethod
    def _nonempty_resources(cls, v: list[str]) -> list[str]:
        if any(not r.strip() for r in v):
            raise ValueError("resource entries must not be empty")
        return v

    @model_validator(mode="after")
    def _gate_rules(self) -> Task:
        if self.kind == "gate":
            if not (self.command and self.command.strip()):
                raise ValueError(f"gate {self.id!r} has no command")
            if self.files:
                raise ValueError(f"gate {self.id!r} cannot have files (a gate only runs its command)")
            if self.group is not None:
                raise ValueError(
                    f"gate {self.id!r} cannot join group {self.group!r} (gates run on their own)"
                )
            if self.ray is not None:
                raise ValueError(f"gate {self.id!r} cannot have ray resources (gates run locally)")
            if self.gate_junit is not None and not _relative_path(self.gate_junit):
                raise ValueError(f"gate {self.id!r}: gate_junit must be a relative path inside the worktree")
        elif self.gate_junit is not None or self.repair_attempts is not None:
            raise ValueError(f"task {self.id!r}: gate_junit and repair_attempts are settings of gates")
        return self

    @property
    def effective_prompt(self) -> str:
        return self.prompt if self.prompt and self.prompt.strip() else self.title

    @property
    def is_gate(self) -> bool:
        return self.kind == "gate"


class Plan(BaseModel):
    """A feature broken into tasks. Validation guarantees a usable DAG, between tasks and between groups."""

    model_config = ConfigDict(extra="forbid")

    feature: str = Field(default="", description="The feature the plan implements.")
    tasks: list[Task] = Field(description="The tasks, in any order.")

    @model_validator(mode="after")
    def _check_graph(self) -> Plan:
        if not self.tasks:
            raise ValueError("the plan has no tasks")
        seen: set[str] = set()
        for t in self.tasks:
            if t.id in seen:
                raise ValueError(f"duplicate task id {t.id!r}")
            seen.add(t.id)
        for t in self.tasks:
            for d in t.depends_on:
                if d not in seen:
                    raise ValueError(f"task {t.id!r} depends on unknown task {d!r}")
                if d == t.id:
                    raise ValueError(f"task {t.id!r} depends on itself")
        cycle = find_cycle({t.id: t.depends_on for t in self.tasks})
        if cycle:
            raise ValueError("dependency cycle: " + " -> ".join([*cycle, cycle[0]]))
        group_cycle = find_group_cycle(self.tasks)
        if group_cycle:
            raise ValueError(
                "groups depend on each other in a cycle: "
                + " -> ".join([*group_cycle, group_cycle[0]])
                + " (a group runs in one wave, so it cannot wait for a group that waits for it)"
            )
        return self

    def task(self, task_id: str) -> Task:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    @property
    def by_id(self) -> dict[str, Task]:
        return {t.id: t for t in self.tasks}


def group_key(task: Task) -> str:
    """The initial group of a task: its explicit group, else a singleton group keyed by its id."""
    return f"g:{task.group}" if task.group is not None else f"t:{task.id}"


def find_group_cycle(tasks: list[Task]) -> list[str] | None:
    """A cycle in the graph of initial groups (explicit groups and singleton tasks), by display name."""
    if not any(t.group is not None for t in tasks):
        return None
    key_of = {t.id: group_key(t) for t in tasks}
    deps: dict[str, list[str]] = {}
    for t in tasks:
        mine = key_of[t.id]
        bucket = deps.setdefault(mine, [])
        bucket.extend(key_of[d] for d in t.depends_on if key_of.get(d, mine) != mine)
    cycle = find_cycle(deps)
    return [k[2:] for k in cycle] if cycle else None


def find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """Return the tasks on one dependency cycle (in dependency order), or None. Iterative DFS."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(deps, WHITE)
    for root in deps:
        if color[root] != WHITE:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        color[root] = GREY
        path.append(root)
        while stack:
            node, i = stack[-1]
            children = deps.get(node, [])
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                if child not in color:
                    continue
                if color[child] == GREY:
                    return path[path.index(child) :]
                if color[child] == WHITE:
                    color[child] = GREY
                    path.append(child)
                    stack.append((child, 0))
            else:
                color[node] = BLACK
                path.pop()
                stack.pop()
    return None
