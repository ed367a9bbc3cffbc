"""Culprit search: its wall time for 2, 4 and 8 groups against one run of the same gate.

One session: a repository whose wave has N groups (one of them breaks the gate), the gate's command
run once on the wave's merge (what a gate costs), then :func:`agentwaves.run.feedback.culprit.search`
over the N groups with ``max_agents`` 4 (each group merged alone on the parent, in a scratch worktree,
the gate in
the sandbox; bisection above 4 groups). The gate sleeps ``GATE_SECONDS`` to stand for a test suite, so
the ratio shows how much of the search is parallel. ``python -m benchmarks --only culprit``.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

GATE_SECONDS = 0.5
AGENTS = 4
_ID = ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "commit.gpgsign=false"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def _repo(path: Path, groups: int) -> tuple[str, dict[str, Any], str]:
    """(parent, branches, merged wave commit): ``groups`` branches off ``parent``, the last one broken."""
    from agentwaves.git.stacking import Branch, stack

    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# bench\n")
    _git(path, "add", "-A")
    _git(path, *_ID, "commit", "-q", "-m", "initial")
    parent = _git(path, "rev-parse", "HEAD")
    branches = {}
    for i in range(groups):
        name = f"g{i}"
        _git(path, "checkout", "-q", "-b", f"agentwaves-groups/bench/{name}", parent)
        (path / f"{name}.py").write_text("BROKEN\n" if i == groups - 1 else f"{name} = {i}\n")
        _git(path, "add", "-A")
        _git(path, *_ID, "commit", "-q", "-m", name)
        branches[name] = Branch(name, _git(path, "rev-parse", "HEAD"), parent)
    _git(path, "checkout", "-q", "main")
    merged, _, conflicts = stack(path, parent, list(branches.values()))
    assert not conflicts
    return parent, branches, merged


def _case(work: Path, groups: int, sandbox: Any) -> dict[str, Any]:
    from agentwaves.config import Config
    from agentwaves.plan.model import Task
    from agentwaves.redact import Redactor
    from agentwaves.run.feedback.culprit import GateTester, search
    from agentwaves.run.feedback.gates import execute_gate, scratch_worktree

    repo = work / f"repo-{groups}"
    parent, branches, merged = _repo(repo, groups)
    command = f"sleep {GATE_SECONDS}; if cat *.py | grep -q BROKEN; then exit 1; fi"
    gate = Task(id="check", title="Check", kind="gate", command=command)
    config = Config(llm="fake", max_agents=AGENTS)
    run_dir = repo / ".agentwaves" / "runs" / "bench"
    run_dir.mkdir(parents=True)
    ctx = SimpleNamespace(
        repo=repo,
        run_dir=run_dir,
        run_id="bench",
        config=config,
        redactor=Redactor(),
        store=SimpleNamespace(state=SimpleNamespace(baseline=None)),
        events=SimpleNamespace(emit=lambda *a, **k: None),
        log_path=lambda t: run_dir / "logs" / f"{t}.log",
    )
    t0 = time.perf_counter()
    with scratch_worktree(repo, work / f"one-{groups}", merged) as tree:
        one = execute_gate(config, gate, tree, sandbox, None)
    one_s = time.perf_counter() - t0
    assert not one.ok
    tester = GateTester(ctx, gate, parent, sandbox, dict(branches))  # type: ignore[arg-type]
    t0 = time.perf_counter()
    culprits, _, _ = search(tester, list(branches), AGENTS)
    search_s = time.perf_counter() - t0
    assert culprits == [f"g{groups - 1}"], culprits
    return {
        "groups": groups,
        "gate_s": round(one_s, 3),
        "search_s": round(search_s, 3),
        "gate_runs": tester.tests,
        "ratio": round(search_s / one_s, 2),
    }


def run(quick: bool = False, repeats: int | None = None) -> dict[str, Any]:
    from agentwaves.sandbox.bwrap import resolve_sandbox

    sandbox, _ = resolve_sandbox("auto")
    rows: dict[int, list[dict[str, Any]]] = {2: [], 4: [], 8: []}
    n = repeats or (1 if quick else 3)
    with tempfile.TemporaryDirectory(prefix="aw-culprit-") as tmp:
        for r in range(n):
            for groups in rows:
                rows[groups].append(_case(Path(tmp) / f"r{r}", groups, sandbox))
    cases = []
    for runs in rows.values():
        med = sorted(runs, key=lambda x: x["ratio"])[len(runs) // 2]
        cases.append(med | {"ratios": [x["ratio"] for x in runs]})
    return {
        "settings": {"gate_sleep_s": GATE_SECONDS, "max_agents": AGENTS, "repeats": n,
                     "sandbox": type(sandbox).__name__},
        "cases": cases,
        "ratio_median": statistics.median(c["ratio"] for c in cases),
    }  # fmt: skip
