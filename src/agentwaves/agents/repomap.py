"""A compact map of a repository for the agents' prompts: tracked files with sizes, and for Python and
JS/TS files their top-level definitions. Deterministic, so it is a stable (cacheable) prompt prefix."""

from __future__ import annotations

import re
from pathlib import Path

from agentwaves.git.ops import git

MAX_FILES = 400
MAX_DEFS = 12
_PY_DEF = re.compile(r"^(?:async\s+)?(def|class)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)
_JS_DEF = re.compile(
    r"^(?:export\s+)?(?:default\s+)?(?:async\s+)?(function|class|const|interface|type)\s+([A-Za-z_$][\w$]*)",
    re.M,
)


def tracked_files(repo: Path) -> list[str]:
    out = git(repo, "ls-files", "-z").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return sorted(p for p in out.split("\0") if p)


def definitions(path: Path) -> list[str]:
    suffix = path.suffix
    if suffix not in {".py", ".js", ".ts", ".tsx", ".jsx", ".mjs"}:
        return []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        return []
    pattern = _PY_DEF if suffix == ".py" else _JS_DEF
    return [f"{kind} {name}" for kind, name in pattern.findall(text)][:MAX_DEFS]


def repo_map(repo: Path, files: list[str] | None = None) -> str:
    files = tracked_files(repo) if files is None else files
    lines = []
    for rel in files[:MAX_FILES]:
        p = repo / rel
        try:
            size = p.stat().st_size
        except OSError:
            continue
        defs = definitions(p)
        lines.append(f"{rel} ({size} B)" + (f": {', '.join(defs)}" if defs else ""))
    if len(files) > MAX_FILES:
        lines.append(f"... and {len(files) - MAX_FILES} more files")
    return "\n".join(lines) if lines else "(empty repository)"
