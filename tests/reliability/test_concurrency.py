"""Adaptive concurrency: rate limits lower the number of agents running at once; successes restore it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentwaves.run.context import Slots
from tests.e2e.helpers import git, latest_state
from tests.reliability.support import Fingerprint, events, make_workspace, tasks_of

# ------------------------------------------------------------------------------------------ Slots


def test_slots_halve_on_rate_limits_and_never_below_one() -> None:
    slots = Slots(4)
    assert [slots.rate_limited() for _ in range(4)] == [2, 1, 1, 1]
    assert slots.max == 4


def test_slots_refuse_beyond_capacity_and_release_is_bounded() -> None:
    slots = Slots(2)
    assert slots.try_acquire() and slots.try_acquire()
    assert not slots.try_acquire()
    slots.rate_limited()  # capacity 1 while 2 are in use: nothing new starts
    slots.release()
    assert not slots.try_acquire()
    slots.release()
    assert slots.try_acquire()
    slots.release()
    slots.release()
    slots.release()
    assert slots.in_use == 0


def test_slots_recover_one_slot_per_five_successes_up_to_the_maximum() -> None:
    slots = Slots(4)
    slots.rate_limited()
    slots.rate_limited()
    grown = [slots.succeeded() for _ in range(20)]
    assert [g for g in grown if g is not None] == [2, 3, 4]
    assert grown.index(2) == 4 and grown.index(3) == 9 and grown.index(4) == 14
    assert slots.capacity == 4 and slots.succeeded() is None


def test_a_rate_limit_resets_the_recovery_streak() -> None:
    slots = Slots(4)
    slots.rate_limited()  # 2
    for _ in range(4):
        assert slots.succeeded() is None
    slots.rate_limited()  # 1, streak back to 0
    assert [slots.succeeded() for _ in range(5)] == [None, None, None, None, 2]


def test_slots_are_thread_safe() -> None:
    slots = Slots(3)
    lock = threading.Lock()
    running = 0
    peak = 0

    def worker() -> None:
        nonlocal running, peak
        for _ in range(200):
            if slots.try_acquire():
                with lock:
                    running += 1
                    peak = max(peak, running)
                with lock:
                    running -= 1
                slots.release()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak <= 3 and slots.in_use == 0


# ------------------------------------------------------------------------------------------ end to end


def running_counts(evs: list[dict[str, Any]]) -> list[int]:
    """After each event, how many agents are at work: tasks between task_started and agent_finished
    (or task_failed/task_stopped); a task's commit after its agent finished holds no slot."""
    running: set[str] = set()
    counts = []
    for e in evs:
        if e["type"] == "task_started":
            running.add(e["task"])
        elif e["type"] in ("agent_finished", "task_done", "task_failed", "task_stopped"):
            running.discard(e["task"])
        counts.append(len(running))
    return counts


def test_rate_limits_lower_concurrency_and_it_recovers(
    make_repo: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    ws = make_workspace(make_repo, tmp_path)
    wide = [f"t{i}" for i in range(1, 7)]
    plan = ws.plan(
        [{"id": t, "title": t.upper(), "files": [f"{t}.py"], "estimate": 2} for t in wide]
        # wave 2: one task with many successful calls and no rate limits, to show the recovery
        + [{"id": "u", "title": "U", "files": ["u.py"], "depends_on": ["t1"], "estimate": 0}]
    )
    calm = [{"tool": "list_files", "input": {}}] * 16 + [{"tool": "finish", "input": {"summary": "looked"}}]
    script = ws.script(
        {
            "tasks": {"u": calm},
            "faults": [{"task": t, "call": 1, "error": "rate_limit"} for t in wide],
        }
    )
    before = Fingerprint.take(ws)
    res = run_cli("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--fake-script", script,
                  "--sandbox", "none", "--max-agents", "4", "--fake-time-scale", "0.25")  # fmt: skip
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    assert len(state["waves"]) == 2 and len(state["waves"][0]["groups"]) == 6
    assert all(t["retries"] == 1 for tid, t in tasks_of(state).items() if tid in wide)

    evs = events(ws.repo)
    counts = running_counts(evs)
    conc = [(i, e) for i, e in enumerate(evs) if e["type"] == "concurrency"]
    limited = [(i, e["capacity"]) for i, e in conc if e["reason"] == "rate limited"]
    assert len(limited) == 6  # one per rate-limited call
    assert min(c for _, c in limited) == 1
    first_limit = limited[0][0]

    starts = [i for i, e in enumerate(evs) if e["type"] == "task_started" and e["task"] in wide]
    # four tasks start at once (--max-agents 4); all six hit a 429 on their first call. Once the first
    # of them is done, the tasks still pending start only below the lowered limit:
    # the number running at once never gets back to 4 in wave 1
    wave1_end = next(i for i, e in enumerate(evs) if e["type"] == "wave_committed" and e["wave"] == 1)
    first_done = next(i for i, e in enumerate(evs) if e["type"] == "task_done")
    assert first_done > first_limit
    late = [i for i in starts if i > first_done]
    assert late, "the fifth and sixth tasks start after a slot is freed"
    assert max(counts[first_done:wave1_end]) < 4
    print(
        f"running at once, wave 1: up to {max(counts[:first_done])} before the first task_done, "
        f"at most {max(counts[first_done:wave1_end])} after it; capacities {[c for _, c in limited]}"
    )

    # when the rate limits stop, successful calls add the slots back, one at a time, up to 4
    last_limit = limited[-1][0]
    recovered = [e["capacity"] for i, e in conc if i > last_limit and e["reason"] == "recovered"]
    assert recovered, "capacity rose again after the last rate limit"
    assert recovered == list(range(recovered[0], recovered[0] + len(recovered)))
    assert recovered[-1] == 4
    before.assert_unchanged(ws)


# ------------------------------------------------------------------------------------------ the commit


def _watch_commits(monkeypatch: Any, waits_for: str, wait: float) -> dict[str, bool]:
    """Patch run_task's steps: ``seen[task]`` becomes whether ``waits_for`` started while that task's
    commit was being made (its commit waits up to ``wait`` seconds for it)."""
    from agentwaves.run import taskrun

    started = threading.Event()
    seen: dict[str, bool] = {}
    real_mark, real_commit = taskrun.mark_started, taskrun.commit_task

    def mark(ctx: Any, tid: str) -> Any:
        if tid == waits_for:
            started.set()
        return real_mark(ctx, tid)

    def commit(group: Any, message: str, paths: list[str], alone: bool) -> str:
        tid = message.split(":", 1)[0].removeprefix("task ")
        if tid != waits_for:
            seen[tid] = started.wait(wait)
        return real_commit(group, message, paths, alone)

    monkeypatch.setattr(taskrun, "mark_started", mark)
    monkeypatch.setattr(taskrun, "commit_task", commit)
    return seen


def test_with_one_agent_the_next_task_starts_while_the_last_one_commits(
    make_repo: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Any], monkeypatch: Any
) -> None:
    """``--max-agents`` counts agents: a task whose agent has finished commits without holding its slot,
    so the next group's agent starts as the commit is made; still one agent at a time."""
    ws = make_workspace(make_repo, tmp_path)
    plan = ws.plan(
        [{"id": t, "title": t.upper(), "files": [f"{t}.py"], "estimate": e} for t, e in (("a", 2), ("b", 1))]
    )
    seen = _watch_commits(monkeypatch, "b", 5)
    res = run_cli("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--sandbox", "none",
                  "--max-agents", "1")  # fmt: skip
    assert res.exit_code == 0, res.stderr + res.stdout
    assert seen == {"a": True}
    assert latest_state(ws.repo)["state"] == "done"
    evs = events(ws.repo)
    calls = [e["task"] for e in evs if e["type"] == "tool"]  # each agent's tool calls, in order
    assert calls and calls == sorted(calls), "b's agent started only after a's had finished"


def test_a_sibling_in_the_same_worktree_waits_for_the_commit(
    make_repo: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Any], monkeypatch: Any
) -> None:
    """Two tasks of one group share its worktree: the second does not start while the first commits
    (it would see the first one's files as already there, and the commit would no longer be alone)."""
    ws = make_workspace(make_repo, tmp_path)
    plan = ws.plan(
        [
            {"id": "s1", "title": "S1", "files": ["one.py"], "group": "g", "estimate": 2},
            {"id": "s2", "title": "S2", "files": ["two.py"], "group": "g", "estimate": 1},
        ]
    )
    seen = _watch_commits(monkeypatch, "s2", 1)
    res = run_cli("execute", "--repo", ws.repo, "--plan", plan, "--llm", "fake", "--sandbox", "none",
                  "--max-agents", "1")  # fmt: skip
    assert res.exit_code == 0, res.stderr + res.stdout
    assert seen == {"s1": False}
    state = latest_state(ws.repo)
    assert state["state"] == "done"
    tasks = tasks_of(state)
    assert git(ws.repo, "show", "--name-only", "--format=", tasks["s1"]["commit"]).split() == ["one.py"]
    assert git(ws.repo, "show", "--name-only", "--format=", tasks["s2"]["commit"]).split() == ["two.py"]


def test_a_slot_is_given_back_once() -> None:
    slots = Slots(1)
    held = slots.hold()
    assert held is not None and slots.hold() is None
    assert held.release() and not held.release()
    assert slots.in_use == 0
    other = slots.hold()
    assert other is not None and slots.in_use == 1
    held.release()  # the first holder again: the second's slot stays taken
    assert slots.in_use == 1
