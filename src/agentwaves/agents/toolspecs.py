"""The builtin agent's tools as the model sees them: names, descriptions, input schemas, input checks."""

from __future__ import annotations

from typing import Any

from agentwaves.llm.base import ToolSpec

MAX_LIST = 1000
MAX_MATCHES = 200


def _spec(name: str, description: str, *fields: tuple[str, str]) -> ToolSpec:
    """A tool with ``(field, description)`` pairs; ``field?`` is optional, ``timeout`` a number."""
    props = {
        field.rstrip("?"): {
            "type": "number" if field.startswith("timeout") else "string",
            "description": text,
        }
        for field, text in fields
    }
    required = [field for field, _ in fields if not field.endswith("?")]
    schema = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    return ToolSpec(name=name, description=description, input_schema=schema)


_PATH = "Path relative to the worktree root, e.g. 'src/app/main.py'."
SPECS = [
    _spec(
        "read_file",
        "Read a UTF-8 text file of the worktree. Long files are cut after the output limit; use `search` or "
        "`run` (e.g. sed -n '200,300p' FILE) for the rest.",
        ("path", _PATH),
    ),
    _spec(
        "write_file",
        "Create or overwrite a file with its complete new content (parent directories are created). For "
        "small changes to an existing file prefer `edit_file`.",
        ("path", _PATH),
        ("content", "The full new file content."),
    ),
    _spec(
        "edit_file",
        "Replace one exact occurrence of `old` with `new` in a file. `old` must match exactly once, "
        "whitespace included; add surrounding lines to make it unique.",
        ("path", _PATH),
        ("old", "Exact text to replace."),
        ("new", "Replacement text."),
    ),
    _spec(
        "list_files",
        f"List files under a directory of the worktree (default: the root), at most {MAX_LIST}. `pattern` "
        "is a glob matched against paths relative to `path` ('*' stays within a directory, '**' spans "
        "directories); without a '/' it matches file names at any depth, e.g. '*.py'. .git is skipped.",
        ("path?", "Directory relative to the worktree root (default '.')."),
        ("pattern?", "Glob, e.g. '*.py' or 'src/**/test_*.py'."),
    ),
    _spec(
        "search",
        f"Search text files for a Python regular expression, line by line. Returns 'path:line: text' "
        f"lines, at most {MAX_MATCHES}. Binary files and .git are skipped.",
        ("pattern", "Python regular expression, e.g. 'def (load|save)_'."),
        ("path?", "File or directory to search, relative to the worktree root (default '.')."),
    ),
    _spec(
        "run",
        "Run a shell command (bash -c) in the worktree root; returns its exit code and combined "
        "stdout/stderr (long output is cut). Use it for tests, linters and builds. stdin is empty, the "
        "sandbox has no network, background processes are killed when the command ends, and you must not "
        "commit: your changes are committed for you when you finish.",
        ("command", "The bash command, e.g. 'python -m pytest -q tests/test_x.py'."),
        ("timeout?", "Seconds before the command is killed (the tool sets the default and the maximum)."),
    ),
    _spec(
        "finish",
        "Call once when the task is done (or cannot be done) to end your work; your changes are then "
        "committed.",
        ("summary", "What you changed and how you verified it, in a few sentences."),
        ("notes?", "Anything reviewers or later tasks should know."),
    ),
]


def check_input(schema: dict[str, Any], data: object) -> str | None:
    """What is wrong with ``data`` for ``schema`` (missing, extra or wrong-typed fields), or None."""
    if not isinstance(data, dict):
        return f"input must be a JSON object, got {type(data).__name__}"
    props: dict[str, dict[str, str]] = schema["properties"]
    extra = sorted(str(k) for k in data if k not in props)
    if extra:
        return f"unexpected field(s) {', '.join(extra)}; allowed: {', '.join(props) or 'none'}"
    missing = [name for name in schema["required"] if name not in data]
    if missing:
        return f"missing required field(s) {', '.join(missing)}"
    for name, value in data.items():
        kind = props[name]["type"]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (isinstance(value, str) if kind == "string" else number):
            return f"field {name} must be a {kind}, got {type(value).__name__}"
    return None
