"""``python -m benchmarks [--quick] [--json] [--jobs N]``: makespan, git overhead, analysis time,
prompt-cache cost and culprit search.

The parts run one after another (never side by side: the machine's cores would be shared and distort
the timings); within the makespan part, full mode measures several runs at once (see
benchmarks/makespan.py). Progress goes to stderr; the results to stdout, as tables or (``--json``) as
one object:
``{"makespan": {...}, "overhead_ratio": x, "analysis_ms": x, "cache_read_share": x,
"lease_check_ms_per_write": x, ...}``.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PARTS = ("makespan", "overhead", "analysis", "cost", "leases", "agents", "culprit")
OPTIONAL_PARTS = ("ray",)  # only with --only: it starts a local Ray (pip install -e '.[ray]')


def machine() -> dict[str, Any]:
    """nproc, memory, CPU model, Python and git versions, load average."""

    def first(path: str, key: str) -> str | None:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return None

    def out(*cmd: str) -> str:
        root = Path(__file__).resolve().parent.parent
        return subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False).stdout.strip()

    mem = first("/proc/meminfo", "MemTotal")
    git = out("git", "--version")
    dirty = bool(out("git", "status", "--porcelain", "--untracked-files=no", "--", "src"))
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(int(mem.split()[0]) / 2**20, 1) if mem else None,
        "cpu": first("/proc/cpuinfo", "model name"),
        "python": platform.python_version(),
        "git": git.removeprefix("git version "),
        "os": f"{platform.system()} {platform.release()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "commit": out("git", "rev-parse", "--short", "HEAD") + (" (src modified)" if dirty else ""),
    }


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_all(
    quick: bool, parts: tuple[str, ...], log: Callable[[str], None] = _log, jobs: int | None = None
) -> dict[str, Any]:
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    result: dict[str, Any] = {"quick": quick, "machine": machine()}
    took: dict[str, float] = {}
    for part in parts:
        log(f"== {part}")
        t0 = time.perf_counter()
        if part == "makespan":
            from . import makespan

            result["makespan"] = makespan.run(quick, progress=log, jobs=jobs)
        elif part == "overhead":
            from . import overhead

            result["overhead"] = overhead.run(quick)
            result["overhead_ratio"] = result["overhead"]["overhead_ratio"]
        elif part == "analysis":
            from . import analysis

            result["analysis"] = analysis.run(quick)
            result["analysis_ms"] = result["analysis"]["analysis_ms"]
        elif part == "cost":
            from . import cost

            result["cost"] = cost.run(quick)
            result["cache_read_share"] = result["cost"]["cache_read_share"]
        elif part == "leases":
            from . import leases

            result["leases"] = leases.run(quick)
            result["lease_check_ms_per_write"] = result["leases"]["added_ms_per_write"]
        elif part == "agents":
            from . import agents

            result["agents"] = agents.run(quick)
        elif part == "ray":
            from . import ray_overhead

            result["ray"] = ray_overhead.run(quick)
        elif part == "culprit":
            from . import culprit

            result["culprit"] = culprit.run(quick)
        took[part] = round(time.perf_counter() - t0, 1)
        log(f"   {part}: {took[part]} s")
    result["seconds"] = took
    jobs_flag = f" --jobs {jobs}" if jobs is not None else ""
    result["command"] = "python -m benchmarks" + (" --quick" if quick else "") + jobs_flag + " --json"
    return result


def _r(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def text_report(res: dict[str, Any]) -> str:
    """The results as short plain-text tables."""
    out: list[str] = []
    m = res.get("makespan")
    if m:
        out.append("Makespan / lower bound max(critical path, work / agents): measured (simulated)")
        out.append(
            f"{'case':<12} {'agents':>6} {'tasks':>5}  {'eager':>13}  {'waves':>13}  {'sequential':>13}"
        )
        for row in m["cases"]:
            cells = [f"{_r(row[s].get('ratio')):>5} ({row[s]['sim_ratio']:.2f})" for s in SCHEDULE_ORDER]
            out.append(
                f"{row['case']:<12} {row['agents']:>6} {row['tasks']:>5}  "
                + "  ".join(f"{c:>13}" for c in cells)
            )
        every = m["summary"]["all"]
        for s in SCHEDULE_ORDER:
            st, sim = every[s]["ratio"] or {}, every[s]["sim_ratio"]
            ovh = (every[s]["overhead_ms_per_task"] or {}).get("median")
            out.append(
                f"{s:<10} mean {_r(st.get('mean'))} (simulated {sim['mean']:.3f}), max {_r(st.get('max'))}; "
                f"overhead {_r(ovh)} ms/task (median)"
            )
        vp = every["waves"]["vs_practical"]
        out.append(f"waves / practical estimate: mean {vp['mean']}, max {vp['max']}")
        out.append(
            f"eager simulated with plan-order starts {every['eager_plan_order_sim_ratio']['mean']}, "
            f"with dependency-only chains {every['eager_deps_chain_sim_ratio']['mean']}"
        )
        if m.get("fixed_cost"):
            f = m["fixed_cost"]
            out.append(
                f"zero-latency pass ({f['tasks']} tasks, {f['agents']} agents): "
                f"eager {f['eager_ms_per_task']} ms/task, waves {f['waves_ms_per_task']} ms/task"
            )
        for lt in m.get("scale_sweep") or []:
            e, w = lt["eager"], lt["waves"]
            out.append(
                f"{lt['tasks']} tasks at {lt['time_scale']} s/min: eager {e['ratio']} "
                f"(sim {e['sim_ratio']}), waves {w['ratio']} (sim {w['sim_ratio']})"
            )
        out.append(f"goals: {m['summary']['goals']}")
        out.append("")
    if "overhead" in res:
        o = res["overhead"]
        out.append(
            f"Overhead: agentwaves {o['agentwaves_s']} s vs naive script {o['naive_s']} s "
            f"on {o['files']} files: ratio {o['overhead_ratio']}"
        )
    if "analysis" in res:
        a = res["analysis"]
        out.append(f"Analysis: {a['tasks']} tasks, {a['dependencies']} dependencies: {a['analysis_ms']} ms")
    if "cost" in res:
        c, per_task = res["cost"], res["cost"]["cost_usd_per_task"]
        out.append(
            f"Cost: cache read share after a wave's first agent {c['cache_read_share']}; "
            f"per task ${per_task['cache_on']} cached vs ${per_task['cache_off']} not"
        )
    if "leases" in res:
        lw = res["leases"]
        out.append(
            f"Leases: {lw['writes']} writes in one session, {lw['plain_ms_per_write']} ms each without the "
            f"check, {lw['guarded_ms_per_write']} ms with it: +{lw['added_ms_per_write']} ms per write "
            f"(goal < {lw['goal_ms']} ms); the added code alone {lw['guard_path_us']} us, "
            f"one check {lw['check_us']} us"
        )
    if "agents" in res and "skipped" in res["agents"]:
        out.append(f"Agents: skipped ({res['agents']['skipped']})")
    elif "agents" in res:
        a = res["agents"]
        out.append(
            f"Agents: each task through execute --agent claude-code {a.get('in_run_s_per_task')} s vs bare "
            f"claude -p {a['bare_claude_s']} s per round: ratio {a.get('marginal_ratio')} (goal <= "
            f"{a['goal_ratio']}); once per run: start {a.get('run_start_s')} s, "
            f"finish {a.get('run_finish_s')} s; "
            f"whole run of {a['tasks_per_round']} tasks {a['agentwaves_s_per_task']} s/task: ratio "
            f"{a['overhead_ratio']} (at most the goal from {a.get('tasks_for_goal')} tasks a run); "
            f"agentwaves' own CPU {a.get('agentwaves_cpu_s_per_task')} s/task; "
            f"8 concurrent agents: peak RSS {a['peak_rss_mib']} MiB ({a['peak_rss_mib_per_agent']} MiB each)"
        )
    if "ray" in res:
        from . import ray_overhead

        out.extend(ray_overhead.text(res["ray"]))
    if "culprit" in res:
        out.append(
            "Culprit search ÷ one gate run (gate sleeps {gate_sleep_s} s, {max_agents} agents):".format(
                **res["culprit"]["settings"]
            )
        )
        for c in res["culprit"]["cases"]:
            out.append(
                f"  {c['groups']} groups: {c['search_s']} s / {c['gate_s']} s = {c['ratio']} "
                f"({c['gate_runs']} gate runs; all repeats {c['ratios']})"
            )
    out.append(f"seconds per part: {res['seconds']}")
    return "\n".join(out)


SCHEDULE_ORDER = ("eager", "waves", "sequential")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    parser.add_argument("--quick", action="store_true", help="smaller cases: finishes in under two minutes")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument(
        "--only", choices=PARTS + OPTIONAL_PARTS, action="append", help="run only this part (repeatable)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON results to this file")
    parser.add_argument(
        "--jobs", type=int, help="makespan runs measured at once (full: 6, quick: 1); 1 for one at a time"
    )
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    res = run_all(args.quick, tuple(args.only or PARTS), jobs=args.jobs)
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2) if args.json else text_report(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
