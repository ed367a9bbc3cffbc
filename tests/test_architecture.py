"""The package layout: one layer per package, imports only downward, no cycles, small modules and folders.

Every ``import`` of ``agentwaves`` is counted, also the ones inside functions or under ``TYPE_CHECKING``:
a lazy import back up is still an arrow back up. docs/architecture.md explains the layers.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "agentwaves"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "redact", "prompts", "truncation"),  # shared leaves
    ("plan",),  # pure: the plan, its conflicts, waves and estimates
    ("llm",),  # model clients: anthropic, the fake, retries, usage and cost
    ("config",),  # settings
    ("sandbox",),  # confinement: bubblewrap, the path gate, the process runner
    ("git",),  # git plumbing that knows nothing of runs
    ("agents",),  # backends: the builtin loop and the agent CLIs
    ("state",),  # durability: state file, events, crash points
    ("run",),  # scheduling a run: session, executor, tasks, merges, wave commits
    ("review",),  # looking back at runs: status, review, report, land, clean
    ("ui",),  # rendering
    ("cli", "demo", "__main__"),  # the commands
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}
MAX_MODULE_LINES = 400
MAX_MODULES_PER_FOLDER = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The agentwaves modules ``path`` imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "agentwaves")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "agentwaves":
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            out.update(subs or {node.module})
    return out & known


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imports_of(p, known) - {m} for m, p in mods.items()}


def test_every_module_has_a_layer() -> None:
    missing = sorted({layer(m) for m in modules()} - set(RANK) - {"__init__"})
    assert not missing, (
        f"modules outside every layer (add them to LAYERS and docs/architecture.md): {missing}"
    )


def test_no_import_from_a_higher_layer() -> None:
    upward = [
        f"{m} -> {d}"
        for m, deps in graph().items()
        if layer(m) in RANK
        for d in deps
        if layer(d) in RANK and RANK[layer(d)] > RANK[layer(m)]
    ]
    assert not upward, "imports from a higher layer:\n" + "\n".join(sorted(upward))


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    color: dict[str, int] = defaultdict(int)
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = 1
        stack.append(n)
        for d in sorted(g.get(n, ())):
            if color[d] == 1:
                return [*stack[stack.index(d) :], d]
            if color[d] == 0 and (found := visit(d)):
                return found
        stack.pop()
        color[n] = 2
        return None

    for n in sorted(g):
        if color[n] == 0 and (found := visit(n)):
            return found
    return None


def test_no_import_cycle() -> None:
    g = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph().items()}
    cycle = find_cycle(g)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_catch_what_they_are_for() -> None:
    """The cycle finder finds a cycle, and a lazy upward import counts as an import."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    from agentwaves.run import session\n")
    found = {f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert found == {"agentwaves.run.session"}


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_module_is_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(SRC)} has {lines} lines (split it)"


def test_folders_are_small() -> None:
    big = {
        str(d.relative_to(SRC)): n
        for d in [SRC, *(p for p in SRC.rglob("*") if p.is_dir() and (p / "__init__.py").exists())]
        if (n := len([f for f in d.glob("*.py") if f.name != "__init__.py"])) > MAX_MODULES_PER_FOLDER
    }
    assert not big, f"folders with more than {MAX_MODULES_PER_FOLDER} modules: {big}"
