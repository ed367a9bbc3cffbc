"""What the ``claude`` process itself costs more inside agentwaves than bare, split by cause.

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
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = ("agentwaves", "no_hook", "no_jail", "bare")


def _variants(argv: list[str], env: dict[str, str], bare_flags: list[str]) -> dict[str, list[str]]:
    i = next(k for k, a in enumerate(argv) if a.endswith("/claude"))
    jail, cmd = argv[:i], argv[i:]
    at = cmd.index("--settings") + 1
    settings = json.loads(cmd[at])
    settings.pop("hooks", None)
    no_hook = [*cmd[:at], json.dumps(settings), *cmd[at + 1 :]]
    prompt = cmd[cmd.index("-p") + 1]
    return {
        "agentwaves": argv,
        "no_hook": [*jail, *no_hook],
        "no_jail": cmd,
        "bare": [cmd[0], "-p", prompt, *bare_flags],
    }


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
    from agentwaves.cli.app import main

    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    real_run = claude_code.run_jsonl

    def measured(argv: list[str], **kw: Any) -> Any:
        cwd, run_env = Path(kw["cwd"]), dict(kw["env"])
        bare_env = {
            **env,
            "TMPDIR": tempfile.mkdtemp(dir=work),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        commands = _variants(list(argv), run_env, bare_flags)
        for r in range(rounds):
            order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
            for name in order:
                times[name].append(_once(commands[name], cwd, bare_env if name == "bare" else run_env))
        subprocess.run(["git", "clean", "-fdq"], cwd=cwd, check=True, capture_output=True)
        return real_run(argv, **kw)

    saved = dict(os.environ)
    claude_code.run_jsonl = measured  # type: ignore[assignment]
    try:
        os.environ.update(env)
        argv = ["execute", "--agent", "claude-code", "--repo", str(repo), "--plan", str(plan)]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main([*argv, "--max-agents", "1", "--json"])
    finally:
        claude_code.run_jsonl = real_run  # type: ignore[assignment]
        os.environ.clear()
        os.environ.update(saved)
    if not times["bare"]:
        return {"skipped": "agentwaves did not start claude"}

    def paired(name: str) -> int:
        return round(statistics.median(a - b for a, b in zip(times[name], times["bare"], strict=True)) * 1000)

    return {
        "rounds": rounds,
        "median_s": {v: round(statistics.median(t), 3) for v, t in times.items()},
        "over_bare_ms": {v: paired(v) for v in VARIANTS if v != "bare"},
        # what each cause adds: the jail (bubblewrap) and the hook, by difference to agentwaves' own run
        "jail_ms": round(
            statistics.median(a - b for a, b in zip(times["agentwaves"], times["no_jail"], strict=True))
            * 1000
        ),
        "hook_ms": round(
            statistics.median(a - b for a, b in zip(times["agentwaves"], times["no_hook"], strict=True))
            * 1000
        ),
    }
