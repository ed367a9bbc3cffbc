"""The fake backend: heuristic planner, implementer and resolver; scripts; faults; latency; caching."""

from __future__ import annotations

import ast
from typing import Any

import pytest
from llm_support import AGENT_TOOLS, PLANNER_TOOLS, SYSTEM, run_loop

from agentwaves.llm.base import (
    CallContext,
    FatalLLMError,
    Message,
    Request,
    RetriesExhausted,
    RetryableError,
    ToolResultBlock,
    ToolUseBlock,
)
from agentwaves.llm.fake import FakeLLM, FakeScript
from agentwaves.llm.fake_heuristics import append_block, merge_conflicts
from agentwaves.llm.retry import RetryingLLM, RetryPolicy
from agentwaves.plan.model import Plan

REPO = ["README.md", "pyproject.toml", "src/shop/__init__.py", "src/shop/cart.py", "tests/test_cart.py"]
TASK = {
    "id": "t2",
    "title": "Implement email notifications",
    "prompt": "Send email.",
    "files": [],
    "estimate": 3,
}


def plan_with(llm: Any, feature: str, files: list[str], attempt: int = 1) -> dict[str, Any]:
    ctx = CallContext(agent="planner", attempt=attempt, hints={"feature": feature, "files": files})
    resp = llm.complete(Request(system="plan", messages=[Message.user(feature)], tools=PLANNER_TOOLS), ctx)
    (use,) = resp.tool_uses
    assert use.name == "submit_plan"
    return use.input


def implementer_ctx(files: list[str], task: dict[str, Any] | None = None, attempt: int = 1) -> CallContext:
    task = {**(task or TASK), "files": files}
    return CallContext(
        agent="implementer", task_id=task["id"], attempt=attempt, hints={"task": task, "files": files}
    )


def ancestors(plan: Plan) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def visit(tid: str) -> set[str]:
        if tid not in out:
            out[tid] = set()
            for d in plan.task(tid).depends_on:
                out[tid] |= {d} | visit(d)
        return out[tid]

    for t in plan.tasks:
        visit(t.id)
    return out


@pytest.mark.parametrize(
    ("feature", "files"),
    [
        ("add email and SMS notifications", REPO),
        ("add a rate limiter", REPO),
        ("support CSV, JSON, XML and YAML export", ["app.py", "README.md"]),
        ("add login, logout and password reset", ["web/app.js", "web/index.js"]),
        ("", []),
    ],
)
def test_heuristic_plan_is_valid_and_parallel(feature: str, files: list[str]) -> None:
    plan = Plan.model_validate(plan_with(FakeLLM(), feature, files))
    assert 4 <= len(plan.tasks) <= 8
    anc = ancestors(plan)
    parallel = [
        (a, b)
        for i, a in enumerate(plan.tasks)
        for b in plan.tasks[i + 1 :]
        if a.id not in anc[b.id] and b.id not in anc[a.id]
    ]
    assert parallel, "at least one pair of tasks can run in parallel"
    for a, b in parallel:
        assert not set(a.files) & set(b.files), f"{a.id} and {b.id} run in parallel on the same file"
    assert all(2 <= t.estimate <= 6 for t in plan.tasks)
    last = plan.tasks[-1]
    assert last.files[0].lower().startswith("readme") and anc[last.id] == {"foundation"}
    for t in plan.tasks:
        if t.id.startswith("test-"):  # each part's tests need only that part
            assert t.depends_on == [t.id.removeprefix("test-")]


def test_heuristic_plan_follows_repo_layout() -> None:
    plan = Plan.model_validate(plan_with(FakeLLM(), "add email and SMS notifications", REPO))
    assert [t.files for t in plan.tasks] == [
        ["src/shop/notifications.py"],
        ["src/shop/email_notifications.py"],
        ["src/shop/sms_notifications.py"],
        ["tests/test_email_notifications.py"],
        ["tests/test_sms_notifications.py"],
        ["README.md"],
    ]
    assert [t.id for t in plan.tasks] == [
        "foundation",
        "email-notifications",
        "sms-notifications",
        "test-email-notifications",
        "test-sms-notifications",
        "docs",
    ]
    assert plan.task("email-notifications").depends_on == ["foundation"]
    assert plan.task("sms-notifications").depends_on == ["foundation"]
    assert plan.feature == "add email and SMS notifications"


def test_implementer_reads_writes_then_finishes() -> None:
    files = {"src/shop/cart.py": "def total(items):\n    return sum(items)\n"}
    predicted = ["src/shop/cart.py", "src/shop/email_notifications.py", "README.md"]
    result = run_loop(FakeLLM(), implementer_ctx(predicted), files)
    calls = [[(u.name, u.input.get("path")) for u in r.tool_uses] for r in result.responses]
    assert calls[0] == [("read_file", p) for p in predicted]
    assert calls[1] == [("write_file", p) for p in predicted]
    assert calls[2] == [("finish", None)]
    assert result.finish is not None
    assert result.finish["summary"] == f"Implement email notifications: wrote {', '.join(predicted)}"
    cart = result.files["src/shop/cart.py"]
    assert cart.startswith(files["src/shop/cart.py"]) and "def email_notifications() -> str:" in cart
    for path in predicted[:2]:
        ast.parse(result.files[path])
    assert "## Implement email notifications" in result.files["README.md"]


def test_appended_blocks_keep_files_valid() -> None:
    task = {"id": "t9", "title": 'Say "hi" \\ twice', "prompt": "p"}
    once = append_block("m.py", "x = 1", task)
    twice = append_block("m.py", once, task)
    ast.parse(twice)
    assert "def say_hi_twice_2() -> str:" in twice and 'return "t9"' in twice
    assert "def test_say_hi_twice() -> None:" in append_block("tests/test_m.py", "", task)
    assert append_block("a.js", "let a;\n", task) == 'let a;\n// Say "hi" \\ twice (task t9)\n'
    assert append_block("x.cfg", "", task).startswith("# Say")
    assert append_block("data.json", '{"a": 1}\n', task) == '{"a": 1}\n'


def test_position_comes_from_the_conversation_not_the_call_number() -> None:
    script = FakeScript.model_validate({"faults": [{"task": "t2", "call": 2, "error": "malformed"}]})
    result = run_loop(FakeLLM(script), implementer_ctx(["a.py"]), {"a.py": "x = 1\n"})
    names = [[u.name for u in r.tool_uses] for r in result.responses]
    assert names == [["read_file"], ["write_file"], ["write_file"], ["finish"]]
    assert "content" not in result.responses[1].tool_uses[0].input  # the malformed one
    assert result.files["a.py"].startswith("x = 1\n") and result.finish is not None


def test_resolver_keeps_both_sides() -> None:
    conflicted = (
        "import os\n<<<<<<< ours\n\n\ndef a():\n    return 1\n||||||| base\n=======\n\n\ndef b():\n"
        "    return 2\n>>>>>>> theirs\n"
    )
    ctx = CallContext(
        agent="resolver", task_id="g1", hints={"group": "g1", "conflicts": {"m.py": conflicted}}
    )
    result = run_loop(FakeLLM(), ctx, {"m.py": conflicted})
    merged = result.files["m.py"]
    assert merged == "import os\n\n\ndef a():\n    return 1\ndef b():\n    return 2\n"
    ast.parse(merged)
    assert result.finish is not None and "m.py" in result.finish["summary"]
    assert merge_conflicts("<<<<<<< a\nsame\n=======\nsame\n>>>>>>> b\n") == "same\n"


def test_script_mode() -> None:
    script = FakeScript.model_validate(
        {
            "plan": {"feature": "f", "tasks": [{"id": "a", "title": "A", "files": ["a.py"]}]},
            "tasks": {
                "t2": [
                    {"tool": "write_file", "input": {"path": "a.py", "content": "x = 1\n"}},
                    {"tool": "finish", "input": {"summary": "done"}},
                ]
            },
            "resolver": {"g1": [{"tool": "finish", "input": {"summary": "nothing to do"}}]},
        }
    )
    llm = FakeLLM(script)
    assert plan_with(llm, "ignored", REPO) == script.plan
    scripted = run_loop(llm, implementer_ctx(["a.py"]), {})
    assert scripted.files == {"a.py": "x = 1\n"} and scripted.finish == {"summary": "done"}
    other = run_loop(llm, implementer_ctx(["b.py"], {**TASK, "id": "t3"}), {})
    assert "def email_notifications" in other.files["b.py"]  # unscripted: heuristic
    resolver = run_loop(llm, CallContext(agent="resolver", task_id="g1", hints={"group": "g1"}), {})
    assert resolver.finish == {"summary": "nothing to do"}


def test_scripted_plans_one_per_attempt_and_resolver_fail() -> None:
    plans = [{"feature": "f", "tasks": []}, {"feature": "f", "tasks": [{"id": "a", "title": "A"}]}]
    llm = FakeLLM(FakeScript.model_validate({"plans": plans, "resolver": "fail"}))
    assert [plan_with(llm, "f", [], attempt=n) for n in (1, 2, 3)] == [plans[0], plans[1], plans[1]]
    conflicts = {"m.py": "<<<<<<< a\nx\n=======\ny\n>>>>>>> b\n"}
    ctx = CallContext(agent="resolver", task_id="g", hints={"group": "g", "conflicts": conflicts})
    result = run_loop(llm, ctx, dict(conflicts))
    assert result.finish == {"summary": "cannot resolve", "notes": "unresolved"}
    assert result.files == conflicts


def test_planner_resubmits_after_a_rejected_plan_in_the_same_conversation() -> None:
    plans = [{"feature": "f", "tasks": []}, {"feature": "f", "tasks": [{"id": "a", "title": "A"}]}]
    llm = FakeLLM(FakeScript.model_validate({"plans": plans}))
    ctx = CallContext(agent="planner", hints={"feature": "f", "files": []})
    first = llm.complete(Request(system="p", messages=[Message.user("f")], tools=PLANNER_TOOLS), ctx)
    use = first.tool_uses[0]
    messages = [
        Message.user("f"),
        Message(role="assistant", content=list(first.content)),
        Message(
            role="user", content=[ToolResultBlock(tool_use_id=use.id, content="no tasks", is_error=True)]
        ),
    ]
    second = llm.complete(Request(system="p", messages=messages, tools=PLANNER_TOOLS), ctx)
    assert second.tool_uses[0].input == plans[1]
    accepted = [*messages[:3], Message(role="assistant", content=list(second.content))]
    accepted.append(
        Message(role="user", content=[ToolResultBlock(tool_use_id=second.tool_uses[0].id, content="ok")])
    )
    third = llm.complete(Request(system="p", messages=accepted, tools=PLANNER_TOOLS), ctx)
    assert third.stop_reason == "end_turn" and not third.tool_uses


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("rate_limit", "rate_limit"),
        ("overloaded", "overloaded"),
        ("server_error", "server_error"),
        ("timeout", "timeout"),
        ("connection", "connection"),
    ],
)
def test_transient_faults_are_retried(error: str, kind: str) -> None:
    script = FakeScript.model_validate(
        {"faults": [{"task": "t2", "call": 1, "error": error, "times": 2, "retry_after": 3}]}
    )
    seen: list[tuple[str, int, float]] = []
    llm = RetryingLLM(
        FakeLLM(script),
        RetryPolicy(jitter=0),
        on_retry=lambda e, n, w: seen.append((e.kind, n, w)),
        sleep=lambda s: None,
    )
    result = run_loop(llm, implementer_ctx(["a.py"]), {})
    assert result.finish is not None
    waits = [3.0, 3.0] if kind == "rate_limit" else [1.0, 2.0]
    assert seen == [(kind, 1, waits[0]), (kind, 2, waits[1])]


def test_fault_exhausts_retries() -> None:
    script = FakeScript.model_validate(
        {"faults": [{"task": "implementer", "error": "overloaded", "times": 9}]}
    )
    llm = RetryingLLM(FakeLLM(script), sleep=lambda s: None)
    with pytest.raises(RetriesExhausted, match="gave up after 6 attempts: overloaded"):
        run_loop(llm, implementer_ctx(["a.py"]), {})


@pytest.mark.parametrize(("error", "match"), [("fatal", "fatal model error"), ("spend_limit", "spend limit")])
def test_fatal_faults(error: str, match: str) -> None:
    fake = FakeLLM(FakeScript.model_validate({"faults": [{"task": "planner", "error": error}]}))
    with pytest.raises(FatalLLMError, match=match):
        plan_with(RetryingLLM(fake, sleep=lambda s: None), "f", [])
    assert len(fake.history) == 1
    assert plan_with(fake, "f", [])["tasks"]  # fired once: the next call works


def test_once_faults_only_hit_the_first_attempt() -> None:
    fake = FakeLLM(
        FakeScript.model_validate({"faults": [{"task": "t2", "call": 1, "error": "fatal", "once": True}]})
    )
    with pytest.raises(FatalLLMError):
        run_loop(fake, implementer_ctx(["a.py"], attempt=1), {})
    assert run_loop(fake, implementer_ctx(["a.py"], attempt=2), {}).finish is not None


def test_malformed_planner_fault() -> None:
    fake = FakeLLM(
        FakeScript.model_validate({"faults": [{"task": "planner", "call": 1, "error": "malformed"}]})
    )
    ctx = CallContext(agent="planner", hints={"feature": "f", "files": []})
    resp = fake.complete(Request(system="p", messages=[Message.user("f")], tools=PLANNER_TOOLS), ctx)
    assert resp.tool_uses[0].name == "submit_plan" and "tasks" not in resp.tool_uses[0].input


def test_determinism_and_history() -> None:
    def session() -> tuple[list[Any], FakeLLM]:
        fake = FakeLLM()
        plan = plan_with(fake, "add email and SMS notifications", REPO)
        result = run_loop(fake, implementer_ctx(["src/shop/cart.py"]), {"src/shop/cart.py": "x = 1\n"})
        return [plan, *(r.model_dump() for r in result.responses)], fake

    (one, fake), (two, _) = session(), session()
    assert one == two
    assert [c.agent for _, c in fake.history] == ["planner", "implementer", "implementer", "implementer"]
    assert [len(r.messages) for r, _ in fake.history] == [1, 1, 3, 5]


def test_simulated_latency() -> None:
    sleeps: list[float] = []
    fake = FakeLLM(time_scale=2.0, sleep=sleeps.append)
    plan_with(fake, "f", [])
    assert sleeps == []  # the planner has no latency
    run_loop(fake, implementer_ctx(["a.py"], {**TASK, "estimate": 3}), {})
    assert sleeps == pytest.approx([2.0, 2.0, 2.0])  # 3 min x 2 s/min over 3 calls


def test_prompt_cache_is_shared_across_agents_and_turns() -> None:
    fake = FakeLLM()
    first = run_loop(fake, implementer_ctx(["a.py"]), {}, prompt="task one " * 50)
    second = run_loop(fake, implementer_ctx(["b.py"], {**TASK, "id": "t3"}), {}, prompt="task two " * 50)
    u1, u2 = first.responses[0].usage, second.responses[0].usage
    assert u1.cache_read_input_tokens == 0 and u1.cache_creation_input_tokens > 0
    # the second agent reads exactly the tools + system prefix the first one wrote
    assert u2.cache_read_input_tokens > 0
    assert u2.cache_read_input_tokens + u2.cache_creation_input_tokens == u2.total_input
    prefix = FakeLLM().complete(Request(system=SYSTEM, messages=[], tools=AGENT_TOOLS), implementer_ctx([]))
    assert u2.cache_read_input_tokens == prefix.usage.total_input
    # later turns read the whole previous prompt
    for prev, nxt in zip(second.responses, second.responses[1:], strict=False):
        assert nxt.usage.cache_read_input_tokens == prev.usage.total_input
    later = [r.usage for r in second.responses]
    share = sum(u.cache_read_input_tokens for u in later) / sum(u.total_input for u in later)
    assert share >= 0.8
    assert all(r.usage.output_tokens > 0 for r in second.responses)


def test_no_caching_when_request_says_so() -> None:
    fake = FakeLLM()
    for _ in range(2):
        resp = fake.complete(
            Request(system="s", messages=[Message.user("hi")], cache=False), implementer_ctx([])
        )
        assert resp.usage.cache_read_input_tokens == 0 and resp.usage.input_tokens > 0


def test_tool_ids_are_unique_and_model_is_priced() -> None:
    result = run_loop(FakeLLM(), implementer_ctx(["a.py", "b.py"]), {})
    ids = [u.id for r in result.responses for u in r.tool_uses]
    assert len(ids) == len(set(ids)) and all(
        isinstance(u, ToolUseBlock) for r in result.responses for u in r.tool_uses
    )
    assert FakeLLM().model == "fake/claude-sonnet-5-5" and FakeLLM(model="claude-opus-5-5").model.endswith(
        "opus-5-5"
    )


def test_bad_script_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="either 'plan' or 'plans'"):
        FakeScript.model_validate({"plan": {}, "plans": [{}]})
    with pytest.raises(ValueError):
        FakeScript.model_validate({"faults": [{"task": "t1", "error": "bogus"}]})
    assert isinstance(RetryableError("x", kind="timeout"), Exception)
