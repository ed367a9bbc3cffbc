"""The lease table: paths, directories and globs; a group's own leases; release."""

from __future__ import annotations

import threading

from agentwaves.run.leases.table import Lease, LeaseTable, refusal_message, write_guard


def _table() -> LeaseTable:
    table = LeaseTable()
    table.take("g1", {"a": ["src/shared.py"], "b": ["src/csv/"], "c": ["docs/**/*.md"]})
    table.take("g2", {"d": ["src/other.py", "src/csv/own.py"]})
    return table


def test_paths_directories_and_globs_are_leased_to_their_group() -> None:
    table = _table()
    assert table.check("g2", "src/shared.py") == Lease("a", "g1", "src/shared.py")
    assert table.check("g2", "src/csv/deep/x.py") == Lease("b", "g1", "src/csv/")
    assert table.check("g2", "docs/a/b/c.md") == Lease("c", "g1", "docs/**/*.md")
    assert table.check("g2", "docs/readme.md") is not None  # ** spans zero directories too
    assert table.check("g2", "docs/a/b/c.txt") is None  # nobody leases it: allowed
    assert table.check("g2", "src/shared.py.bak") is None
    assert table.check("g1", "src/shared.py") is None  # the owner's own group
    # both groups lease it (the plan serializes them): the writer's own lease lets it through
    assert table.check("g2", "src/csv/own.py") is None
    assert table.check("g3", "src/csv/own.py") is not None
    assert table.check("g1", "src/other.py") == Lease("d", "g2", "src/other.py")


def test_release_frees_paths() -> None:
    table = _table()
    table.release("a", "zzz")
    assert table.check("g2", "src/shared.py") is None
    assert table.holders() == {"b": "g1", "c": "g1", "d": "g2"}
    table.take("g1", {"b": []})  # no files: holds nothing
    assert table.check("g2", "src/csv/x.py") is None


def test_guard_returns_the_issue_message_and_reports() -> None:
    table = _table()
    seen: list[tuple[str, Lease]] = []
    guard = write_guard(table, "d", "g2", lambda path, lease: seen.append((path, lease)))
    assert guard("src/new.py") is None
    assert guard("src/shared.py") == (
        "src/shared.py is being written by task a in group g1; record what you need in your handoff, "
        "or finish and let a later task do it"
    )
    assert seen == [("src/shared.py", Lease("a", "g1", "src/shared.py"))]
    assert refusal_message("x", Lease("t", "g", "x")).startswith("x is being written by task t in group g;")


def test_concurrent_checks_see_a_consistent_table() -> None:
    table = LeaseTable()
    errors: list[BaseException] = []
    stop = threading.Event()

    def churn() -> None:
        i = 0
        while not stop.is_set():
            table.take("g1", {f"t{i % 7}": [f"src/m{i % 7}.py", "lib/"]})
            table.release(f"t{(i + 3) % 7}")
            i += 1

    def read() -> None:
        try:
            for _ in range(20_000):
                lease = table.check("g2", "lib/x.py")
                assert lease is None or lease.group == "g1"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writer = threading.Thread(target=churn)
    readers = [threading.Thread(target=read) for _ in range(3)]
    writer.start()
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    stop.set()
    writer.join()
    assert not errors


def test_a_wrapped_backend_can_turn_the_live_check_off() -> None:
    from agentwaves.agents.builtin import BuiltinBackend
    from agentwaves.llm.fake import FakeLLM
    from agentwaves.llm.retry import RetryingLLM, RetryPolicy
    from agentwaves.run.leases.fallback import backend_has_live_leases

    fake = FakeLLM()
    assert backend_has_live_leases(BuiltinBackend(RetryingLLM(fake, RetryPolicy())))
    fake.live_leases = False  # type: ignore[attr-defined]  # a test switch, found through the wrapper
    assert not backend_has_live_leases(BuiltinBackend(RetryingLLM(fake, RetryPolicy())))
    assert not backend_has_live_leases(object())  # an agent CLI writes through its own tools


def test_resume_restores_the_leases_of_started_groups_of_uncommitted_waves() -> None:
    """``restore_leases`` on the recovered state (the kill -9 case end to end: tests/reliability/
    test_resume_leases.py): started groups (with a branch) lease all their tasks' files again, done ones
    too; not groups that never started, not committed waves; with eager, not done groups."""
    from types import SimpleNamespace

    from agentwaves.plan import analyze
    from agentwaves.plan.model import Plan
    from agentwaves.run.leases.scope import restore_leases

    plan = Plan.model_validate(
        {
            "tasks": [
                {"id": "a1", "title": "a1", "files": ["src/a1.py"], "group": "ga"},
                {"id": "a2", "title": "a2", "files": ["src/a2.py"], "group": "ga"},
                {"id": "b", "title": "b", "files": ["src/b/"], "group": "gb"},
                {"id": "c", "title": "c", "files": ["src/c.py"], "group": "gc"},
                {"id": "d", "title": "d", "files": ["src/d.py"], "group": "gd", "depends_on": ["a1"]},
            ]
        }
    )
    analysis = analyze(plan)
    assert [sorted(g.name for g in w.groups) for w in analysis.waves] == [["ga", "gb", "gc"], ["gd"]]
    groups = {
        "ga": SimpleNamespace(branch="agentwaves-groups/r/ga", state="done"),
        "gb": SimpleNamespace(branch="agentwaves-groups/r/gb", state="pending"),
        "gc": SimpleNamespace(branch=None, state="pending"),  # had not started
        "gd": SimpleNamespace(branch=None, state="pending"),
    }
    for schedule, held in (
        ("waves", {"a1": "ga", "a2": "ga", "b": "gb"}),
        ("eager", {"b": "gb"}),  # eager: a done group's leases ended with it
    ):
        ctx = SimpleNamespace(
            store=SimpleNamespace(state=SimpleNamespace(group=groups.__getitem__)),
            plan=plan,
            analysis=analysis,
            config=SimpleNamespace(schedule=schedule),
            leases=LeaseTable(),
        )
        restore_leases(ctx, lambda index: False)  # type: ignore[arg-type]
        assert ctx.leases.holders() == held
        assert ctx.leases.check("gc", "src/b/x.py") == Lease("b", "gb", "src/b/")
        ctx.leases = LeaseTable()
        restore_leases(ctx, lambda index: index == 1)  # type: ignore[arg-type]  # wave 1 committed
        assert ctx.leases.holders() == {}


def test_the_end_of_task_check_takes_the_drivers_listing_of_the_worktree(tmp_path) -> None:
    """A CLI driver lists the worktree's changes as its agent ends (``TaskResult.changed``); the end-of-task
    check uses that listing instead of asking git again (a real repository, clean here: git itself would
    list nothing), less what already differed at the task's start."""
    import subprocess
    from types import SimpleNamespace

    from agentwaves.agents.backend import TaskResult
    from agentwaves.llm.base import Usage
    from agentwaves.run.leases.fallback import baseline, intrusions
    from agentwaves.state.store import Handoff

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    before = baseline(tmp_path)
    assert before == {}
    leases = LeaseTable()
    leases.take("owner", {"t": ["src/shared.py"]})
    ctx = SimpleNamespace(leases=leases)
    listed = TaskResult(Handoff(task="i", summary="s"), Usage(), changed={"src/shared.py", "src/mine.py"})
    found = intrusions(ctx, "intruder", tmp_path, listed, False, before)  # type: ignore[arg-type]
    assert [(path, lease.group) for path, lease in found] == [("src/shared.py", "owner")]
    unlisted = TaskResult(Handoff(task="i", summary="s"), Usage())  # no listing: git is asked
    assert intrusions(ctx, "intruder", tmp_path, unlisted, False, before) == []  # type: ignore[arg-type]
