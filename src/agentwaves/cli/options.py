"""Option definitions shared by several commands, so each is declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (stable shape, see docs/).")]
Repo = Annotated[
    Path, typer.Option("--repo", help="The git repository to work on.", file_okay=False, resolve_path=True)
]
MaxAgents = Annotated[
    int | None, typer.Option("--max-agents", min=1, max=64, help="At most this many tasks run at once.")
]
Llm = Annotated[str | None, typer.Option("--llm", help="LLM backend: anthropic or fake.")]
Agent = Annotated[
    str | None,
    typer.Option(
        "--agent", help="The agent: builtin (default), claude-code, codex, acp (env AGENTWAVES_AGENT)."
    ),
]
Model = Annotated[str | None, typer.Option("--model", help="Model name (env AGENTWAVES_MODEL).")]
FakeScript = Annotated[
    Path | None,
    typer.Option(
        "--fake-script", help="YAML script for the fake backend.", dir_okay=False, resolve_path=True
    ),
]
FakeTimeScale = Annotated[
    float | None,
    typer.Option("--fake-time-scale", min=0, help="Fake backend: seconds of latency per estimated minute."),
]
Record = Annotated[
    Path | None,
    typer.Option(
        "--record",
        help="Record every model response to FILE (JSONL) to replay with the fake.",
        dir_okay=False,
        resolve_path=True,
    ),
]
Executor = Annotated[
    str | None,
    typer.Option("--executor", help="Where tasks run: local (default) or ray (a Ray cluster; docs/ray.md)."),
]
RunId = Annotated[str | None, typer.Argument(help="Run id; the latest run if omitted.")]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Print every wave, group and task, even of a long plan.")
]
