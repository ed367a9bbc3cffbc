"""The plan: tasks with dependencies, predicted writes and shared resources.

A plan is what the planner writes to ``.agentwaves/plan.yaml`` and what people edit by hand. These models
validate it completely (unique ids, known dependencies, no cycles, gates with commands), so everything
downstream can trust a ``Plan`` it is given. This module knows nothing of git, LLMs or files on disk.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentwaves.errors import UsageError

TASK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PlanError(UsageError):
    """A plan that cannot be used. The message is one line that names the problem."""


class Task(BaseModel):
    """One unit of work for one agent (``kind: task``) or a validation command (``kind: gate``)."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    id: str = Field(description="Unique id: letters, digits, '_', '-', '.'; starts with a letter or digit.")
    title: str = Field(description="One line saying what the task does.")
    prompt: str | None = Field(default=None, description="What the agent is asked to do; the title if omitted.")
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
    kind: Literal["task", "gate"] = Field(default="task", description="'task' (an agent) or 'gate' (a command).")
    command: str | None = Field(default=None, description="Shell command of a gate; required for gates.")
    estimate: float = Field(default=1, description="Predicted duration in minutes; default 1.")

    @field_validator("id")
    @classmethod
    def _valid_id(cls, v: str) -> str:
        if not TASK_ID_RE.match(v):
            raise ValueError(f"invalid task id {v!r}: use letters, digits, '_', '-' or '.'")
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

    @model_validator(mode="after")
    def _gate_command(self) -> Task:
        if self.kind == "gate" and not (self.command and self.command.strip()):
            raise ValueError(f"gate {self.id!r} has no command")
        return self

    @property
    def effective_prompt(self) -> str:
        return self.prompt if self.prompt and self.prompt.strip() else self.title


class Plan(BaseModel):
    """A feature broken into tasks. Validation guarantees a usable DAG."""

    model_config = ConfigDict(extra="forbid")

    feature: str = Field(default="", description="The feature the plan implements.")
    tasks: list[Task] = Field(description="The tasks, in any order.")

    @model_validator(mode="after")
    def _check_graph(self) -> Plan:
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
        return self

    def task(self, task_id: str) -> Task:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    @property
    def by_id(self) -> dict[str, Task]:
        return {t.id: t for t in self.tasks}


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
