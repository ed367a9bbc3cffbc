"""Smoke tests of the benchmark suite: its code paths work. No timings are asserted, only structure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` lives at the repository root, beside `src`
    sys.path.insert(0, str(ROOT))

from agentwaves.plan import analyze  # noqa: E402
from benchmarks import makespan  # noqa: E402
from benchmarks.dags import example_plans, load_example, lower_bound, random_dag  # noqa: E402
from benchmarks.simulate import list_schedule, simulate  # noqa: E402


def test_makespan_case_runs_the_three_schedules(tmp_path: Path) -> None:
    plan = random_dag(6, seed=0)
    settings = makespan.Settings(
        example_bound_s=0.1,
        random_scale=0.002,  # a 3-minute task sleeps 6 ms
        dags=1,
        low=6,
        high=6,
        agents=(4,),
        sequential_every=1,
        example_repeats=1,
    )
    case = makespan.Case("smoke", "random", plan, 4, makespan.SCHEDULES)
    other = makespan.Case("other", "random", random_dag(4, seed=1), 2, ("eager",))
    lines: list[str] = []
    # two worker processes: every run of both cases is measured, and the rows come back in case order
    row, second = makespan.run_cases([(case, settings), (other, settings)], jobs=2, progress=lines.append)
    assert second["case"] == "other" and "ratio" in second["eager"] and "ratio" not in second["waves"]
    assert len(lines) == 4 and any("other x2 --eager" in line for line in lines)
    for key in ("case", "tasks", "agents", "bound_min", "practical_min", "time_scale", "list_ratio"):
        assert key in row
    for schedule in makespan.SCHEDULES:
        entry = row[schedule]
        assert {"measured_s", "ratio", "sim_ratio", "overhead_ms_per_task"} <= set(entry)
        # the fake sleeps each task's estimate: no run can beat the lower bound
        assert entry["ratio"] >= 0.99
        assert entry["sim_ratio"] >= 0.99
    assert "vs_practical" in row["waves"]
    summary = makespan.summarize([row])
    assert set(summary) == {"all", "example", "random", "goals"}
    assert summary["random"]["eager"]["ratio"]["n"] == 1


def test_simulations_respect_the_lower_bound() -> None:
    plans = [random_dag(40, seed) for seed in range(3)]
    plans += [load_example(path) for path in example_plans().values()]
    for plan in plans:
        for agents in (2, 4, 8):
            bound = lower_bound(plan, agents).lower
            analysis = analyze(plan, max_agents=agents)
            assert list_schedule(plan, agents) >= bound - 1e-9
            for schedule in makespan.SCHEDULES:
                assert simulate(analysis, schedule, agents) >= bound - 1e-9
            for priority in ("plan", "deps"):
                assert simulate(analysis, "eager", agents, priority) >= bound - 1e-9
        # the executor starts a wave's tasks as the practical estimate orders them: the same makespan
        practical = lower_bound(plan, 4).practical
        assert abs(simulate(analyze(plan, max_agents=4), "waves", 4) - practical) < 1e-6


def test_cli_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--json" in proc.stdout


def test_cli_refuses_fewer_than_one_job() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--jobs", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("--jobs must be at least 1")
    assert "Traceback" not in proc.stderr


def test_lease_benchmark_runs_one_session_of_writes() -> None:
    from benchmarks import leases

    res = leases.run(quick=True)
    assert res["writes"] == 1000 and res["refused"] == 0  # every write allowed: equal file work
    assert res["leasing_tasks"] == 49 and res["check_us"] > 0
    assert {"plain_ms_per_write", "guarded_ms_per_write", "added_ms_per_write", "met"} <= set(res)


def test_culprit_part_finds_the_broken_group() -> None:
    from benchmarks import culprit

    res = culprit.run(quick=True, repeats=1)
    assert [c["groups"] for c in res["cases"]] == [2, 4, 8]
    assert all(c["gate_runs"] >= 2 and c["search_s"] > 0 for c in res["cases"])


def test_agents_benchmark_splits_a_run_by_its_events(tmp_path: Path) -> None:
    from benchmarks.agents import phases

    lines = [
        '{"ts": "2026-12-01T12:00:00.500Z", "type": "run_started"}',
        '{"ts": "2026-12-01T12:00:01.000Z", "type": "task_started", "task": "a"}',
        '{"ts": "2026-12-01T12:00:02.000Z", "type": "task_done", "task": "a"}',
        '{"ts": "2026-12-01T12:00:02.100Z", "type": "task_started", "task": "b"}',
        '{"ts": "2026-12-01T12:00:03.250Z", "type": "task_done", "task": "b"}',
        '{"ts": "2026-12-01T12:00:03.400Z", "type": "run_finished"}',
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    start = 1796126400.0  # 2026-12-01T12:00:00Z
    split = phases(events, start, start + 4.0)
    assert {k: round(v, 3) for k, v in split.items()} == {"start_s": 1.0, "tasks_s": 2.25, "finish_s": 0.75}


def test_the_paired_ratio_s_interval_holds_its_median_and_narrows_with_more_pairs() -> None:
    import random
    import statistics

    from benchmarks.agents import median_interval

    rng = random.Random(1)
    few = [rng.gauss(1.1, 0.2) for _ in range(24)]
    many = few + [rng.gauss(1.1, 0.2) for _ in range(72)]
    for values in (few, many):
        low, high = median_interval(values)
        assert min(values) <= low < statistics.median(values) < high <= max(values)
        assert median_interval(values) == (low, high)  # seeded: the same values, the same interval
    widths = [high - low for low, high in map(median_interval, (few, many))]
    assert widths[1] < widths[0]
    assert median_interval([1.0] * 8) == (1.0, 1.0)
