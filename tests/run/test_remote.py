"""The Ray executor's parts that need no cluster: bundles out and back (and what is refused), the seam's
errors before a run exists, secrets kept out of payload reprs, a node that cannot run the task, plan and
config resources. The cluster tests are in tests/raycluster/."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agentwaves.errors import UsageError
from agentwaves.plan.compute import RayResources
from agentwaves.plan.load import load_plan
from agentwaves.plan.model import Task
from agentwaves.run.remote import transport
from agentwaves.run.remote.spec import LLMSpec, SecretEnv, TaskSpec
from agentwaves.run.remote.worker import check_node, commit_message
from agentwaves.run.taskrun import task_commit_message
from agentwaves.state.store import Handoff
from tests.conftest import git

BRANCH = "agentwaves-groups/r1/g"


def _commit(repo: Path, path: str, text: str, msg: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)
    return git(repo, "rev-parse", "HEAD")


def _node(tmp_path: Path, head: Path, ref: str, haves: list[str]) -> tuple[Path, int]:
    """Send ``ref`` to a node cache; returns the cache and the bundle's size (0: nothing sent)."""
    cache = transport.open_cache(tmp_path / "node" / "cache.git")
    out = tmp_path / "out.bundle"
    tip = git(head, "rev-parse", ref)
    if not transport.bundle_out(head, ref, tip, haves, out):
        return cache, 0
    transport.bundle_in(cache, out, ref)
    size = out.stat().st_size
    out.unlink()
    return cache, size


def test_bundles_out_are_incremental_and_nothing_is_sent_when_the_node_has_the_start(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    head = make_repo({f"f{i}.txt": f"{i}\n" * 200 for i in range(200)})
    git(head, "branch", BRANCH)
    cache, first = _node(tmp_path, head, f"refs/heads/{BRANCH}", [])
    assert transport.has_commit(cache, git(head, "rev-parse", "HEAD"))
    base = _commit(head, "new.txt", "one more file\n", "next")
    git(head, "branch", "-f", BRANCH, base)
    _, second = _node(tmp_path, head, f"refs/heads/{BRANCH}", transport.node_haves(cache))
    assert 0 < second < first / 5  # only the new commit, not the history again
    assert transport.has_commit(cache, base)
    assert _node(tmp_path, head, f"refs/heads/{BRANCH}", transport.node_haves(cache))[1] == 0
    # haves the head never had (another repository's tips) are ignored, not an error
    assert transport.known_commits(head, ["0" * 40, base]) == [base]


def test_a_wiped_node_cache_is_reported_as_missing_base(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    head = make_repo()
    first = git(head, "rev-parse", "HEAD")
    _commit(head, "b.txt", "b\n", "b")
    git(head, "branch", BRANCH)
    out = tmp_path / "inc.bundle"
    assert transport.bundle_out(head, f"refs/heads/{BRANCH}", git(head, "rev-parse", BRANCH), [first], out)
    empty = transport.open_cache(tmp_path / "wiped.git")
    with pytest.raises(transport.MissingBase):
        transport.bundle_in(empty, out, f"refs/heads/{BRANCH}")


def _returned(
    make_repo: Callable[..., Path], tmp_path: Path, build: Callable[[Path, str], None]
) -> tuple[Path, Path, str]:
    """A head repo with the group branch at ``start``, and a node clone where ``build`` makes commits."""
    head = make_repo()
    start = git(head, "rev-parse", "HEAD")
    git(head, "branch", BRANCH, start)
    node = tmp_path / "nodeclone"
    subprocess.run(["git", "clone", "-q", str(head), str(node)], check=True)
    git(node, "checkout", "-q", "-B", BRANCH, start)
    build(node, start)
    bundle = tmp_path / "back.bundle"
    transport.bundle_back(node, BRANCH, start, bundle)
    return head, bundle, start


def _task_commit(node: Path, tid: str, path: str = "x.py") -> None:
    msg = commit_message("r1", Task(id=tid, title=tid.upper()), Handoff(task=tid, summary="did it"))
    (node / path).write_text(f"{tid}\n")
    git(node, "add", "-A")
    subprocess.run(["git", "commit", "-q", "-F", "-"], cwd=node, input=msg, text=True, check=True)


def test_a_returned_task_commit_is_verified_and_moves_the_group_branch(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    head, bundle, start = _returned(make_repo, tmp_path, lambda node, _: _task_commit(node, "t1"))
    sha = transport.import_task_bundle(head, bundle, BRANCH, start, "t1")
    assert git(head, "rev-parse", BRANCH) == sha and git(head, "rev-parse", f"{sha}^") == start


@pytest.mark.parametrize(
    ("case", "build", "why"),
    [
        (
            "two commits",
            lambda n, s: (_task_commit(n, "t1"), _task_commit(n, "t1", "y.py")),
            "not one commit",
        ),
        ("another task", lambda n, s: _task_commit(n, "other"), "not this task's"),
        ("no trailer", lambda n, s: _commit(n, "x.py", "x\n", "plain"), "not this task's"),
    ],
)
def test_a_returned_bundle_that_is_not_exactly_the_task_commit_is_refused(
    make_repo: Callable[..., Path], tmp_path: Path, case: str, build: Callable[[Path, str], None], why: str
) -> None:
    head, bundle, start = _returned(make_repo, tmp_path, build)
    with pytest.raises(transport.BundleRejected, match=why):
        transport.import_task_bundle(head, bundle, BRANCH, start, "t1")
    assert git(head, "rev-parse", BRANCH) == start  # the group branch did not move


def test_a_returned_bundle_with_another_ref_or_on_another_base_is_refused(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    head, _, start = _returned(make_repo, tmp_path, lambda node, _: _task_commit(node, "t1"))
    node = tmp_path / "nodeclone"
    git(node, "branch", "-f", "agentwaves-groups/r1/other", "HEAD")
    both = tmp_path / "both.bundle"
    git(
        node,
        "bundle",
        "create",
        "-q",
        str(both),
        f"refs/heads/{BRANCH}",
        "refs/heads/agentwaves-groups/r1/other",
        f"^{start}",
    )
    with pytest.raises(transport.BundleRejected, match="must hold only"):
        transport.import_task_bundle(head, both, BRANCH, start, "t1")
    # a commit on a history the head does not have: the bundle does not verify
    git(node, "checkout", "-q", "--orphan", "loose")
    _commit(node, "z.txt", "z\n", "unrelated root")
    stray = _commit(node, "z2.txt", "z\n", "unrelated")
    git(node, "branch", "-f", BRANCH, stray)
    loose = tmp_path / "loose.bundle"
    git(node, "bundle", "create", "-q", str(loose), f"refs/heads/{BRANCH}", f"^{stray}^")
    with pytest.raises(transport.BundleRejected, match="does not verify"):
        transport.import_task_bundle(head, loose, BRANCH, start, "t1")
    assert git(head, "rev-parse", BRANCH) == start


def test_the_node_commit_message_is_the_local_one() -> None:
    task, handoff = Task(id="t1", title="T"), Handoff(task="t1", summary="s")

    class Ctx:
        run_id = "r1"

    assert commit_message("r1", task, handoff) == task_commit_message(Ctx(), task, handoff)  # type: ignore[arg-type]


def test_secrets_are_not_in_the_reprs_of_what_is_sent() -> None:
    secrets = SecretEnv({"ANTHROPIC_API_KEY": "sk-ant-verysecretvalue123"})
    spec = TaskSpec("r1", "k", "g", BRANCH, "a" * 40, 41000, {"id": "t1"}, 1, llm=LLMSpec("anthropic"))
    for text in (repr(secrets), str(secrets), repr(spec), repr((spec, None, secrets))):
        assert "verysecret" not in text
    assert "ANTHROPIC_API_KEY" in repr(secrets)
    assert "sk-ant" not in repr(spec.__dict__)  # the spec carries no secret at all
    import pickle

    assert pickle.loads(pickle.dumps(secrets)).get("ANTHROPIC_API_KEY") == "sk-ant-verysecretvalue123"


def test_a_node_without_bubblewrap_is_an_error_naming_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "git").symlink_to(
        subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    )
    monkeypatch.setenv("PATH", str(bindir))  # this "node" has git but no bwrap
    spec = TaskSpec("r1", "k", "g", BRANCH, "a" * 40, 41000, {"id": "t1"}, 1, sandbox="bwrap")
    _, problem = check_node(spec, "box7/0123456789ab")
    assert problem is not None and problem.startswith("node box7/0123456789ab: ")
    assert "bubblewrap (bwrap) is not installed" in problem
    spec.sandbox = "none"
    assert check_node(spec, "box7/0123456789ab")[1] is None


def test_a_node_makes_the_agents_layer_backend_or_says_why_it_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentwaves.agents.builtin import BuiltinBackend
    from agentwaves.config import Config
    from agentwaves.run.remote.backends import agent_settings, node_backend

    def spec(backend: str, **config: object) -> TaskSpec:
        agent = agent_settings(Config(**config), backend)  # type: ignore[arg-type]
        return TaskSpec(
            "r1", "k", "g", BRANCH, "a" * 40, 41000, {"id": "t1"}, 1, backend=backend, agent=agent
        )

    agent, why = node_backend(spec("builtin", llm="fake"), SecretEnv({}), lambda *a: None, tmp_path)
    assert isinstance(agent, BuiltinBackend) and why is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no claude here
    agent, why = node_backend(spec("claude-code"), SecretEnv({}), lambda *a: None, tmp_path)
    assert agent is None and why is not None and "\n" not in why
    assert why.startswith("--agent claude-code: `claude` is not installed or not on PATH")
    fake = tmp_path / "claude"  # agent_command passes on: the node runs the program it names
    fake.write_text("#!/bin/sh\necho 2.1.332 '(Claude Code)'\n")
    fake.chmod(0o755)
    agent, why = node_backend(
        spec("claude-code", agent_command=str(fake)), SecretEnv({}), lambda *a: None, tmp_path
    )
    assert why is None and agent is not None and agent.name == "claude-code"
    assert vars(agent)["program"] == str(fake)


def test_the_preflight_error_lists_nodes_that_lack_the_same_thing_together() -> None:
    from agentwaves.run.remote.preflight import grouped

    reasons = ["node a/1: `x` is missing", "node b/2: bwrap: no", "node c/3: `x` is missing"]
    assert grouped(reasons) == "nodes a/1, c/3: `x` is missing; node b/2: bwrap: no"


def test_each_agent_sends_a_node_only_the_variables_it_needs() -> None:
    from agentwaves.agents.backend import remote_env
    from agentwaves.config import Config

    assert remote_env(Config(llm="fake")) == ()
    assert remote_env(Config(llm="anthropic")) == ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")
    claude = remote_env(Config(agent="claude-code"))
    assert "ANTHROPIC_API_KEY" in claude and not any(n.startswith("OPENAI") for n in claude)
    assert "OPENAI_API_KEY" in remote_env(Config(agent="codex"))
    acp = remote_env(Config(agent="acp", agent_command="codex-acp --flag"))
    assert "OPENAI_API_KEY" in acp and "ANTHROPIC_API_KEY" not in acp
    assert "GEMINI_API_KEY" in remote_env(Config(agent="acp", agent_command="gemini --experimental-acp"))


def test_ray_resources_merge_and_validate(tmp_path: Path) -> None:
    base = RayResources(num_cpus=2, memory="1G", resources={"gpu_box": 1, "a": 1})
    mine = RayResources(memory="512MiB", resources={"a": 2})
    merged = mine.over(base)
    assert merged.ray_options() == {"num_cpus": 2, "memory": 512 * 2**20, "resources": {"gpu_box": 1, "a": 2}}
    assert RayResources().ray_options() == {"num_cpus": 1.0}
    assert merged.needs() == {"CPU": 2, "memory": 512 * 2**20, "gpu_box": 1, "a": 2}
    plan = tmp_path / "p.yaml"
    plan.write_text("tasks:\n  - {id: a, title: A, ray: {memory: lots}}\n")
    with pytest.raises(UsageError, match="memory 'lots' is not a size"):
        load_plan(plan)
    plan.write_text("tasks:\n  - {id: g, title: G, kind: gate, command: 'true', ray: {num_cpus: 1}}\n")
    with pytest.raises(UsageError, match="cannot have ray resources"):
        load_plan(plan)


def test_importing_agentwaves_does_not_import_ray() -> None:
    code = (
        "import sys, agentwaves.cli.app, agentwaves.run.session, agentwaves.run.remote.runner, "
        "agentwaves.run.remote.worker; assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_executor_ray_without_ray_is_one_line_before_any_run_exists(
    make_repo: Callable[..., Path], run_cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    import agentwaves.run.remote.runner as runner

    monkeypatch.setattr(runner, "ray_available", lambda: False)
    repo = make_repo()
    plan = repo.parent / "plan.yaml"
    plan.write_text("tasks:\n  - {id: a, title: A, files: [a.py]}\n")
    branches = git(repo, "branch", "--list")
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--executor", "ray")
    assert res.exit_code == 2  # type: ignore[attr-defined]
    err = res.stderr.strip()  # type: ignore[attr-defined]
    assert err.splitlines() == [err] and "pip install 'agentwaves[ray]'" in err and "Traceback" not in err
    assert not (repo / ".agentwaves" / "runs").exists() or not list((repo / ".agentwaves" / "runs").iterdir())
    assert git(repo, "branch", "--list") == branches
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--executor", "cloud")
    assert res.exit_code == 2 and "unknown executor 'cloud'" in res.stderr  # type: ignore[attr-defined]


def test_an_unreachable_ray_address_is_one_line_within_seconds(
    make_repo: Callable[..., Path], run_cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import time

    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    repo = make_repo()
    plan = repo.parent / "plan.yaml"
    plan.write_text("tasks:\n  - {id: a, title: A, files: [a.py]}\n")
    t0 = time.monotonic()
    res = run_cli("execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--executor", "ray")
    assert time.monotonic() - t0 < 30
    assert res.exit_code == 2  # type: ignore[attr-defined]
    err = res.stderr.strip()  # type: ignore[attr-defined]
    assert err.splitlines() == [err] and "Traceback" not in err
    assert f"cannot connect to the Ray cluster at 127.0.0.1:{port}" in err
    assert not (repo / ".agentwaves" / "runs").exists() or not list((repo / ".agentwaves" / "runs").iterdir())
