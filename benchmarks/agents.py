"""External agents: what ``execute --agent claude-code`` adds per task over a bare ``claude -p``, and the
peak memory of 8 Claude Code agents at once.

Both sides run the real pinned ``claude`` (tests/agentcli.py; ``python -m tests.agentcli install``)
against the scripted Messages API stub of the tests on 127.0.0.1, in one session, with the same scripted
task (write one file, hand off), and one HOME (claude's own state, warmed by a first bare run, as a user's
is): the bare side runs ``claude -p`` directly in a git repository, N times
in a row; the agentwaves side executes a plan of N independent tasks with ``--max-agents 1`` (so one
claude at a time, each in its own worktree, inside bubblewrap, then merged and committed), its wall time
(Python start-up and the wave's merge and commit included) divided by N; rounds of both alternate. Memory: 8
tasks with ``--max-agents 8`` and a stub that answers each call after ``delay`` seconds, so the agents
overlap; the sum of the resident set sizes of agentwaves and all its descendants is sampled every 20 ms.

The agentwaves side's wall time is also split with its own ``events.jsonl`` timestamps into the run's
fixed cost (process start to the first ``task_started``: Python's start-up and imports, the checks, the
run's state and first worktree; and the last ``task_done`` to the exit: the wave's merge and commit,
removing the worktrees) and the span of the tasks themselves, whose per-task share against a bare
``claude -p`` is the marginal overhead (what each further task of a run costs).
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.agents_split import bare_env, paired
from benchmarks.agents_split import split as alone

ROOT = Path(__file__).resolve().parent.parent
GOAL = 1.15  # issue 15: each task through agentwaves at most 1.15 times a bare `claude -p`
PAIRED_EXECUTES = 6  # full mode: paired executes of n tasks; their tasks' ratios are pooled
SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
BARE_FLAGS = ["--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits"]
BARE_FLAGS += ["--max-turns", "10", "--no-session-persistence", "--json-schema", json.dumps(SCHEMA)]


def _stub(delay: float = 0.0) -> Any:
    sys.path.insert(0, str(ROOT))
    from tests.agents.stub_messages import Stub

    def steps(key: str) -> list[dict[str, Any]]:
        return [
            {"tools": [{"name": "Write", "input": {"file_path": "{cwd}/" + f"{key}.txt", "content": "x\n"}}]},
            {"tools": [{"name": "StructuredOutput", "input": {"summary": f"wrote {key}.txt"}}]},
            {"text": "done"},
        ]

    keys = [f"{side}{i}" for side in ("b", "t") for i in range(20)]
    return Stub(script={k: steps(k) for k in keys}, delay=delay).start()


def _claude() -> Path | None:
    sys.path.insert(0, str(ROOT))
    from tests.agentcli import cli_path

    path = cli_path("claude-code")
    return path if path.exists() else None


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _repo(path: Path) -> Path:
    if path.exists():
        return path
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# bench\n")
    _git(path, "add", "-A")
    _git(path, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "initial")
    return path


def _env(home: Path, stub: Any, claude: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{claude.parent}:{os.environ['PATH']}",
        "ANTHROPIC_BASE_URL": stub.url,
        "ANTHROPIC_API_KEY": "sk-ant-bench",
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@b",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@b",
    }


def bare(work: Path, stub: Any, claude: Path, n: int) -> list[float]:
    """Seconds per bare ``claude -p`` of the scripted task."""
    repo = _repo(work / "bare")
    times = []
    for i in range(n):
        env = bare_env(_env(work / "home", stub, claude), work)
        argv = [str(claude), "-p", f"# Your task: b{i}: T\n\nwrite b{i}.txt", *BARE_FLAGS]
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return times


def _plan(path: Path, n: int) -> Path:
    tasks = [{"id": f"t{i}", "title": f"T{i}", "files": [f"t{i}.txt"]} for i in range(n)]
    path.write_text(json.dumps({"feature": "bench", "tasks": tasks}))
    return path


def agentwaves(
    work: Path, stub: Any, claude: Path, n: int, agents: int, name: str, sample: bool = False
) -> tuple[float, int, dict[str, float]]:
    """Wall seconds of ``execute --agent claude-code`` of ``n`` tasks, the peak RSS sum in bytes (with
    ``sample``; else 0), and the wall time split by the run's events (:func:`phases`). The memory sampler
    reads all of /proc every 20 ms (about 8 ms of CPU each time, 40 % of a core): a timed run is not
    sampled, or it would measure the sampler's load on claude."""
    repo = _repo(work / name)
    plan = _plan(work / f"{name}.json", n)
    argv = [sys.executable, "-m", "agentwaves", "execute", "--agent", "claude-code", "--repo", str(repo)]
    argv += ["--plan", str(plan), "--max-agents", str(agents), "--json"]
    env = _env(work / "home", stub, claude)  # the bare side's HOME: claude's own state as warm
    cpu0 = _children_cpu()
    wall0, t0 = time.time(), time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sampling() -> None:
        while sample and not done.wait(0.02):
            peak[0] = max(peak[0], tree_rss(proc.pid))

    sampler = threading.Thread(target=sampling, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    elapsed = time.perf_counter() - t0
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"execute failed: {err.decode()[-500:]}")
    events = next((repo / ".agentwaves" / "runs").glob("*/events.jsonl"))
    return elapsed, peak[0], {**phases(events, wall0, wall0 + elapsed), "cpu_s": _children_cpu() - cpu0}


def median_interval(values: list[float], resamples: int = 2000) -> tuple[float, float]:
    """A 95 % bootstrap interval of the median of ``values`` (percentiles 2.5 and 97.5 of the medians of
    ``resamples`` resamples with replacement; seeded, so the same values give the same interval)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def _children_cpu() -> float:
    """CPU seconds of the waited-for children so far. bubblewrap's PID namespace keeps claude's own CPU out
    of it, so for ``execute`` it is agentwaves' own: its process and the git and bwrap processes it ran."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def phases(events: Path, start: float, end: float) -> dict[str, float]:
    """``start_s`` (process start to the first ``task_started``), ``tasks_s`` (to the last ``task_done``)
    and ``finish_s`` (from there to the exit), from the run's events; ``start``/``end`` are epoch seconds."""
    stamps: dict[str, list[float]] = {"task_started": [], "task_done": []}
    for line in events.read_text().splitlines():
        event = json.loads(line)
        if event.get("type") in stamps:
            stamp = datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))
            stamps[event["type"]].append(stamp.timestamp())
    first, last = min(stamps["task_started"]), max(stamps["task_done"])
    return {"start_s": first - start, "tasks_s": last - first, "finish_s": end - last}


def tree_rss(root: int) -> int:
    """Bytes resident in ``root`` and all its descendants (from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            rss[int(entry.name)] = int((entry / "statm").read_text().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += [p for p, pp in parents.items() if pp == pid]
    return total


def run(quick: bool) -> dict[str, Any]:
    """Rounds of (n bare runs, one execute of n tasks), interleaved so that a load change on the machine
    affects both sides alike; the ratios are the medians of the rounds' ratios."""
    n, rounds = (4, 1) if quick else (8, 5)
    claude = _claude()
    if claude is None:
        return {"skipped": "the pinned claude is not installed: python -m tests.agentcli install"}
    bare_s: list[float] = []
    per_task: list[float] = []
    split: list[dict[str, float]] = []
    claude_split: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="agentwaves-bench-agents-") as tmp:
        work = Path(tmp)
        stub = _stub()
        try:
            bare(work, stub, claude, 1)  # warm the binary's pages and claude's state in the shared HOME
            for r in range(rounds):
                bare_s.append(statistics.median(bare(work, stub, claude, n)))
                elapsed, _, parts = agentwaves(work, stub, claude, n, 1, f"seq{r}")
                per_task.append(elapsed / n)
                split.append(parts)
            env = _env(work / "home", stub, claude)
            pairs = [paired(env, _repo(work / f"pair{r}"), _plan(work / f"pair{r}.json", n), BARE_FLAGS, work)
                     for r in range(1 if quick else PAIRED_EXECUTES)]  # fmt: skip
            if not quick:
                claude_split = alone(
                    work, env, _repo(work / "split"), _plan(work / "split.json", 1), 10, BARE_FLAGS
                )
        finally:
            stub.stop()
        slow = _stub(delay=1.0)
        try:
            conc_s, peak, _ = agentwaves(work, slow, claude, 8, 8, "conc", sample=True)
        finally:
            slow.stop()
    ratios = [a / b for a, b in zip(per_task, bare_s, strict=True)]
    extra_ms = statistics.median(a - b for a, b in zip(per_task, bare_s, strict=True)) * 1000
    in_run = [p["tasks_s"] / n for p in split]
    marginal = statistics.median(a / b for a, b in zip(in_run, bare_s, strict=True))
    fixed = statistics.median(p["start_s"] + p["finish_s"] for p in split)
    bare_median = statistics.median(bare_s)
    # tasks per run from which the whole run's ratio is at most the goal: fixed / ((goal - marginal) * bare)
    room = (GOAL - marginal) * bare_median
    pooled_ratios = [r for p in pairs for r in p["ratios"]]
    pooled = statistics.median(pooled_ratios)
    low, high = median_interval(pooled_ratios)
    return {
        "tasks_per_round": n,
        "rounds": rounds,
        "bare_claude_s": [round(t, 3) for t in bare_s],
        "agentwaves_s_per_task": [round(t, 3) for t in per_task],
        "overhead_ratio": round(statistics.median(ratios), 3),
        "overhead_ms_per_task": round(extra_ms),
        "run_start_s": [round(p["start_s"], 3) for p in split],
        "run_finish_s": [round(p["finish_s"], 3) for p in split],
        "in_run_s_per_task": [round(t, 3) for t in in_run],
        "marginal_ratio": round(marginal, 3),
        "marginal_ms_per_task": round(
            statistics.median(a - b for a, b in zip(in_run, bare_s, strict=True)) * 1000
        ),
        "run_fixed_s": round(fixed, 3),
        "tasks_for_goal": round(fixed / room, 1) if room > 0 else None,
        "agentwaves_cpu_s_per_task": [round(p["cpu_s"] / n, 3) for p in split],
        "paired": pairs,
        # every paired task of every execute: one median of 6 x 8 pairs moves less than one of 8
        "paired_ratio": round(pooled, 3),
        "paired_ratio_ci95": [round(low, 3), round(high, 3)],
        "claude_split": claude_split,
        "goal_met_per_task": pooled <= GOAL,
        "goal_met_at_95pct": high <= GOAL,
        "concurrent_agents": 8,
        "concurrent_total_s": round(conc_s, 3),
        "peak_rss_mib": round(peak / 2**20, 1),
        "peak_rss_mib_per_agent": round(peak / 2**20 / 8, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "goal_ratio": GOAL,
    }


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
