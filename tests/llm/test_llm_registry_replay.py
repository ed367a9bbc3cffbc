"""Backends by name, fake-script loading errors, and record/replay."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from llm_support import API_KEY, run_loop

from agentwaves.errors import UsageError
from agentwaves.llm.base import LLM, CallContext, FatalLLMError, Message, Request
from agentwaves.llm.fake import FakeLLM
from agentwaves.llm.registry import available_backends, load_fake_script, make_llm
from agentwaves.llm.replay import RecordingLLM
from agentwaves.llm.retry import RetryingLLM, RetryPolicy
from agentwaves.plan.model import Plan

TASK = {"id": "t1", "title": "Add a helper", "prompt": "Add it.", "estimate": 2}


def ctx(files: list[str], attempt: int = 1) -> CallContext:
    hints = {"task": {**TASK, "files": files}, "files": files}
    return CallContext(agent="implementer", task_id="t1", attempt=attempt, hints=hints)


def test_backends_and_unknown_name() -> None:
    assert available_backends() == ["anthropic", "fake"]
    with pytest.raises(UsageError) as info:
        make_llm("gpt")
    assert str(info.value) == "unknown LLM backend 'gpt': choose anthropic or fake"
    assert info.value.exit_code == 2


def test_make_fake_is_wrapped_in_the_retry_policy(tmp_path: Path) -> None:
    policy = RetryPolicy(max_attempts=2)
    llm = make_llm("FAKE", retry=policy, sleep=lambda s: None)
    assert isinstance(llm, RetryingLLM) and isinstance(llm.inner, FakeLLM) and isinstance(llm, LLM)
    assert llm.policy is policy and llm.name == "fake"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "No such file"),
        ("tasks: [unclosed\n", "invalid YAML at line"),
        ("- just\n- a list\n", "expected a mapping"),
        ("faults:\n  - task: t1\n    error: meteor\n", "faults.0.error"),
        ("tasks:\n  t1:\n    - input: {}\n", "tasks.t1.0.tool: Field required"),
        ("surprise: 1\n", "surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_fake_script_is_a_one_line_usage_error(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "script.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError) as info:
        make_llm("fake", fake_script=path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and problem in message


def test_empty_script_means_heuristic(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_fake_script(path).tasks == {}


def test_time_scale_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTWAVES_FAKE_TIME_SCALE", "0.5")
    sleeps: list[float] = []
    run_loop(make_llm("fake", sleep=sleeps.append), ctx(["a.py"]), {})
    assert sleeps == pytest.approx([1 / 3] * 3)  # 2 min x 0.5 s/min over 3 calls
    assert make_llm("fake", fake_time_scale=0).inner.time_scale == 0  # type: ignore[attr-defined]
    monkeypatch.setenv("AGENTWAVES_FAKE_TIME_SCALE", "fast")
    with pytest.raises(UsageError, match="AGENTWAVES_FAKE_TIME_SCALE"):
        make_llm("fake")


def test_record_then_replay_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    rec = tmp_path / "runs" / "session.jsonl"
    script = tmp_path / "s.yaml"
    script.write_text("faults:\n  - {task: t1, call: 2, error: overloaded}\n")
    recorded = run_loop(
        make_llm("fake", fake_script=script, record=rec, sleep=lambda s: None), ctx(["a.py"]), {}
    )
    lines = [json.loads(line) for line in rec.read_text().splitlines()]
    assert len(lines) == 3  # the overloaded attempt is retried, not recorded
    assert [r["ctx"] for r in lines] == [
        {"agent": "implementer", "task_id": "t1", "attempt": 1, "call": n} for n in (1, 2, 3)
    ]
    assert "hints" not in rec.read_text() and API_KEY not in rec.read_text()

    replayed = run_loop(make_llm("fake", fake_script=rec), ctx(["a.py"]), {})
    assert [r.model_dump() for r in replayed.responses] == [r.model_dump() for r in recorded.responses]
    assert replayed.files == recorded.files

    with pytest.raises(FatalLLMError, match="no response for implementer call 1"):
        FakeLLM(replay=rec).complete(Request(system="s", messages=[Message.user("x")]), ctx([], attempt=2))


def test_recording_wraps_any_backend(tmp_path: Path) -> None:
    rec = RecordingLLM(FakeLLM(), tmp_path / "r.jsonl")
    assert (rec.name, rec.model) == ("fake", "fake/claude-sonnet-5-5")
    rec.complete(Request(system="s", messages=[Message.user("x")]), CallContext(agent="planner"))
    assert json.loads((tmp_path / "r.jsonl").read_text())["ctx"]["agent"] == "planner"


def test_bad_replay_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="replay file"):
        make_llm("fake", fake_script=tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ctx": {"agent": "planner"}}\n')
    with pytest.raises(UsageError, match=r"bad.jsonl line 1: not a recorded call"):
        make_llm("fake", fake_script=bad)


def test_the_documented_script_example_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "llm.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    script = load_fake_script(path)
    assert script.plan is not None and Plan.model_validate(script.plan).task("t4").depends_on == ["t2", "t3"]
    assert [f.error for f in script.faults] == ["overloaded", "rate_limit", "fatal", "malformed"]


def test_fake_is_thread_safe() -> None:
    fake = FakeLLM()
    contexts = [ctx([f"m{i}.py"]) for i in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda c: run_loop(fake, c, {}), contexts))
    assert all(r.finish is not None for r in results)
    assert len(fake.history) == 16 * 3
