"""The in-process measures of :mod:`benchmarks.agents`: each task paired with a bare run (:func:`paired`),
and what the ``claude`` process itself costs more inside agentwaves than bare, split by cause
(:func:`split`).

**Paired.** One ``execute`` of N tasks runs in this process; as agentwaves starts each task's claude, a
bare ``claude -p`` of the same task (its prompt, the bare side's flags, no jail) runs first in the same
worktree, which is then cleaned. Task i costs through agentwaves its span in ``run_task`` less the bare
run, plus the gap to the next task's start; its ratio is that over the bare run made a second before it,
so a load change on the machine hits both sides of each pair alike (the rounds of separate runs in
:func:`benchmarks.agents.run` are minutes apart at their ends).

**Split.**

:mod:`benchmarks.agents` measures a task through ``execute`` against a bare ``claude -p``; part of the
difference is agentwaves' own work (``own_cost``), the rest is the claude process running longer. This
part finds out why: inside one ``execute`` of one task (in this process), at the moment agentwaves starts
claude, it first runs the same task's claude several times in the same worktree, with the run's own
command line, environment, jail and live write hook, varied one cause at a time:

- ``agentwaves``: exactly what agentwaves runs (bubblewrap, its flags and ``--settings``, the write hook);
- ``no_hook``: the same without the ``PreToolUse`` write hook in ``--settings``;
- ``no_jail``: the same claude command line and environment without bubblewrap around it;
- ``bare``: ``claude -p`` with the bare side's flags (no jail, no settings, no system prompt).

The worktree is reset between runs (``git clean``), the order of the variants rotates every round, and
the differences are taken pairwise within a round, so a load change on the machine hits all alike. The
figures are wall seconds (bubblewrap's PID namespace hides claude's CPU from ``getrusage``).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = ("agentwaves", "no_hook", "no_jail", "bare")


def bare_env(env: dict[str, str], work: Path) -> dict[str, str]:
    """The bare side's environment: ``env`` with a fresh TMPDIR and only claude's API calls."""
    return {**env, "TMPDIR": tempfile.mkdtemp(dir=work), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


def _parts(argv: list[str]) -> tuple[list[str], list[str]]:
    """The jail's part of the command line agentwaves runs, and claude's."""
    i = next(k for k, a in enumerate(argv) if a.endswith("/claude"))
    return argv[:i], argv[i:]


def _bare(cmd: list[str], bare_flags: list[str]) -> list[str]:
    """``claude -p`` of the same prompt with the bare side's flags."""
    return [cmd[0], "-p", cmd[cmd.index("-p") + 1], *bare_flags]


def _variants(argv: list[str], bare_flags: list[str]) -> dict[str, list[str]]:
    jail, cmd = _parts(argv)
    at = cmd.index("--settings") + 1
    settings = json.loads(cmd[at])
    settings.pop("hooks", None)
    no_hook = [*cmd[:at], json.dumps(settings), *cmd[at + 1 :]]
    return {"agentwaves": argv, "no_hook": [*jail, *no_hook], "no_jail": cmd, "bare": _bare(cmd, bare_flags)}


def paired(env: dict[str, str], repo: Path, plan: Path, bare_flags: list[str], work: Path) -> dict[str, Any]:
    """Per task: through agentwaves (its own work and its claude) against a bare run of the same task."""
    from agentwaves.agents.drivers import claude_code
    from agentwaves.run import groups

    rows: list[tuple[float, float, float, float, float]] = []  # start, end, bare run, claude, cleaning
    now: dict[str, float] = {}
    real_run, real_task = claude_code.run_jsonl, groups.run_task

    def measured(argv: list[str], **kw: Any) -> Any:
        now["bare"] = _once(_bare(_parts(argv)[1], bare_flags), Path(kw["cwd"]), bare_env(env, work))
        t0 = time.perf_counter()
        subprocess.run(["git", "clean", "-fdq"], cwd=kw["cwd"], check=True, capture_output=True)
        now["clean"] = time.perf_counter() - t0  # cleaning up after the bare run: not agentwaves' time
        t0 = time.perf_counter()
        try:
            return real_run(argv, **kw)
        finally:
            now["claude"] = time.perf_counter() - t0

    def timed_task(*args: Any, **kw: Any) -> None:
        t0 = time.perf_counter()
        try:
            real_task(*args, **kw)
        finally:
            rows.append((t0, time.perf_counter(), now.pop("bare"), now.pop("claude"), now.pop("clean")))

    _inside(env, repo, plan, {(claude_code, "run_jsonl"): measured, (groups, "run_task"): timed_task})
    rows.sort()
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(rows)]
    gaps.append(statistics.median(gaps) if gaps else 0.0)  # the last task: no next one
    through = [(end - start - b - cl) + gap for (start, end, b, _, cl), gap in zip(rows, gaps, strict=True)]
    bare = [r[2] for r in rows]
    ratios = [t / b for t, b in zip(through, bare, strict=True)]
    return {
        "tasks": len(rows),
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "extra_ms": round(statistics.median(t - b for t, b in zip(through, bare, strict=True)) * 1000),
        "bare_s": round(statistics.median(bare), 3),
        "claude_s": round(statistics.median(r[3] for r in rows), 3),
        # agentwaves' own time: in the task beside its claude, and from one task's end to the next one's start
        "in_task_ms": round(statistics.median(e - s - b - c - cl for s, e, b, c, cl in rows) * 1000, 1),
        "between_tasks_ms": round(statistics.median(gaps) * 1000, 1),
    }


def _inside(env: dict[str, str], repo: Path, plan: Path, patches: dict[tuple[Any, str], Any]) -> None:
    """``execute --agent claude-code --max-agents 1`` of ``plan`` in this process, with ``patches``
    (module, name) -> replacement applied meanwhile, and ``env`` as the process's environment."""
    from agentwaves.cli.app import main

    saved_env = dict(os.environ)
    saved = {key: getattr(*key) for key in patches}
    for (module, name), value in patches.items():
        setattr(module, name, value)
    try:
        os.environ.update(env)
        argv = ["execute", "--agent", "claude-code", "--repo", str(repo), "--plan", str(plan)]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main([*argv, "--max-agents", "1", "--json"])
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)
        os.environ.clear()
        os.environ.update(saved_env)


def _once(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    subprocess.run(["git", "clean", "-fdq"], cwd=cwd, check=True, capture_output=True)
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0 or b'"type":"result"' not in done.stdout.replace(b" ", b""):
        raise SystemExit(f"claude failed ({argv[0]}): {done.stderr.decode()[-300:]}")
    return elapsed


def split(
    work: Path, env: dict[str, str], repo: Path, plan: Path, rounds: int, bare_flags: list[str]
) -> dict[str, Any]:
    """Runs ``rounds`` rounds of the variants inside one ``execute`` of ``plan`` (one task) in ``repo``."""
    from agentwaves.agents.drivers import claude_code

    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    real_run = claude_code.run_jsonl

    def measured(argv: list[str], **kw: Any) -> Any:
        cwd, run_env, bare = Path(kw["cwd"]), dict(kw["env"]), bare_env(env, work)
        commands = _variants(list(argv), bare_flags)
        for r in range(rounds):
            order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
            for name in order:
                times[name].append(_once(commands[name], cwd, bare if name == "bare" else run_env))
        subprocess.run(["git", "clean", "-fdq"], cwd=cwd, check=True, capture_output=True)
        return real_run(argv, **kw)

    _inside(env, repo, plan, {(claude_code, "run_jsonl"): measured})
    if not times["bare"]:
        return {"skipped": "agentwaves did not start claude"}

    def ms_over(name: str, base: str) -> int:  # the median of the rounds' differences
        return round(statistics.median(a - b for a, b in zip(times[name], times[base], strict=True)) * 1000)

    return {
        "rounds": rounds,
        "median_s": {v: round(statistics.median(t), 3) for v, t in times.items()},
        "over_bare_ms": {v: ms_over(v, "bare") for v in VARIANTS if v != "bare"},
        # what each cause adds: the jail (bubblewrap) and the hook, by difference to agentwaves' own run
        "jail_ms": ms_over("agentwaves", "no_jail"),
        "hook_ms": ms_over("agentwaves", "no_hook"),
    }
