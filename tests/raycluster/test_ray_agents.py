"""CLI agents on Ray nodes: the real pinned ``claude`` on two nodes of the shared cluster, against the
scripted Messages API stub on 127.0.0.1 (the nodes run on this machine, so they reach it).

Before each test the shared worker nodes ``w1`` and ``w2`` get ``claude`` in their ``bin`` folders (each
has its own HOME and scratch dir) and the spare node ``c3`` has the system's programs but no ``claude``;
all three offer the ``claude`` resource the tasks ask for. The tests that give ``c3`` ``claude`` or take
its ``bwrap`` restore it. The head passes only the API key and base URL, at call time.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agentcli import agent_cli
from tests.agents.claude_support import bash, done, writes
from tests.agents.stub_messages import Stub
from tests.e2e.helpers import git, latest_state, tree_files, wave_commits
from tests.raycluster.conftest import RayCluster, programs_of, system_programs
from tests.reliability.support import agentwaves, events, make_workspace, run_dirs, spawn, tasks_of, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CONFIG = {"ray_resources": {"num_cpus": 0.5, "resources": {"claude": 1}}}


@dataclass
class ClaudeNodes:
    cluster: RayCluster
    stub: Stub
    claude: Path

    def env(self, key: str) -> dict[str, str]:
        """The head's environment: the cluster, ``claude`` on PATH, the key and the stub's URL."""
        return {
            "RAY_ADDRESS": self.cluster.address,
            "PATH": f"{self.claude.parent}:{os.environ['PATH']}",
            "ANTHROPIC_BASE_URL": self.stub.url,
            "ANTHROPIC_API_KEY": key,
        }

    def spare(self, programs: dict[str, Path]) -> None:
        """Exactly ``programs`` on the spare node ``c3``'s PATH."""
        self.cluster.provide("c3", programs)


@pytest.fixture(scope="module")
def claude_stub() -> Iterator[Stub]:
    stub = Stub().start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def claude_nodes(ray_cluster: RayCluster, spare_node: str, claude_stub: Stub) -> Iterator[ClaudeNodes]:
    """``claude`` on w1 and w2, not on c3 (set before each test: another module's tests give the shared
    nodes other CLIs)."""
    claude = agent_cli("claude-code")
    for name in ("w1", "w2"):
        ray_cluster.provide(name, programs_of(claude))
    ray_cluster.provide(spare_node, system_programs())
    try:
        yield ClaudeNodes(ray_cluster, claude_stub, claude)
    finally:
        ray_cluster.provide(spare_node, system_programs())


def _state_tasks(repo: Path) -> dict:
    try:
        return tasks_of(latest_state(repo))
    except (OSError, ValueError, IndexError):
        return {}


def _execute(nodes: ClaudeNodes, repo: Path, plan: Path, key: str) -> subprocess.CompletedProcess[str]:
    return agentwaves(
        "execute", "--agent", "claude-code", "--executor", "ray", "--repo", repo, "--plan", plan,
        env=nodes.env(key), timeout=300,
    )  # fmt: skip


def test_claude_code_runs_groups_on_two_nodes_one_commit_per_wave(
    claude_nodes: ClaudeNodes, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    nodes, key = claude_nodes, f"sk-ant-canary-{uuid.uuid4()}"
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""}, config=CONFIG)
    plan = ws.plan(
        [
            {"id": "a", "title": "A", "files": ["src/a.py"]},
            {"id": "b", "title": "B", "files": ["src/b.py"]},
            {"id": "c", "title": "C", "files": ["src/c.py"], "depends_on": ["a", "b"]},
        ]
    )
    nodes.stub.delay = 0.5  # a and b overlap: wave 1's groups go to both nodes
    nodes.stub.script = {
        "a": [writes("src/a.py", "A = 1\n"), *done("wrote src/a.py", "a is first")],
        "b": [bash("printf 'B = 2\\n' > src/b.py"), *done("wrote src/b.py")],
        "c": [writes("src/c.py", "C = 3\n"), *done("wrote src/c.py")],
    }
    res = _execute(nodes, ws.repo, plan, key)
    assert res.returncode == 0, res.stderr + res.stdout
    state = latest_state(ws.repo)
    assert state["state"] == "done" and state["settings"]["executor"] == "ray"
    tasks = tasks_of(state)
    assert {nodes.cluster.name_of(tasks[t]["node"]) for t in "ab"} == {"w1", "w2"}
    assert nodes.cluster.name_of(tasks["c"]["node"]) in ("w1", "w2")
    assert [s.split()[2] for s, _ in wave_commits(ws.repo, state)] == ["1", "2"]  # one commit per wave
    added = set(tree_files(ws.repo, state["branch"])) - set(tree_files(ws.repo, state["base"]))
    assert added == {"src/a.py", "src/b.py", "src/c.py"}  # exactly the scripted files
    for name, text in (("a", "A = 1"), ("b", "B = 2"), ("c", "C = 3")):
        assert git(ws.repo, "show", f"{state['branch']}:src/{name}.py") == text
    assert tasks["a"]["handoff"]["summary"] == "wrote src/a.py"
    # c's prompt, on its node, carried a's handoff
    assert "a is first" in json.dumps(nodes.stub.main_requests("c")[0]["messages"][0])
    # the agents' tool calls reached events.jsonl live, with their node; usage and cost in status
    evs = events(ws.repo)
    tools = {(e["task"], e["tool"], e["node"]) for e in evs if e["type"] == "tool"}
    assert ("a", "Write", tasks["a"]["node"]) in tools and ("b", "Bash", tasks["b"]["node"]) in tools
    usage = [e for e in evs if e["type"] == "usage"]
    assert {e["task"] for e in usage} == {"a", "b", "c"} and all(e["cost_known"] for e in usage)
    status = json.loads(agentwaves("status", "--json", "--repo", ws.repo).stdout)
    assert status["usage"]["cost_usd"] > 0 and status["usage"]["input_tokens"] > 0
    assert {t["node"] for w in status["waves"] for g in w["groups"] for t in g["tasks"]} == {
        tasks[t]["node"] for t in "abc"
    }
    # the key reached claude on the nodes (else it could not have called the API) and is on no disk:
    # the run's files, the nodes' scratch dirs and homes, Ray's session logs
    session = Path(nodes.cluster.nodes["head"].get_session_dir_path())
    places = [ws.repo / ".agentwaves", session]
    places += [nodes.cluster.scratch(n) for n in ("w1", "w2")] + [nodes.cluster.home(n) for n in ("w1", "w2")]
    found = subprocess.run(["grep", "-rlaF", key, *map(str, places)], capture_output=True, text=True)
    assert found.stdout == "", found.stdout
    assert key not in git(ws.repo, "log", "-p", "--all", "--format=%B")


@dataclass
class UnfitRun:
    """One run with two nodes that cannot run claude-code: the head (no ``claude``) and c3 (``claude`` but
    no ``bwrap``); wave 1 (x, y, z) on w1 and w2, then w only the head offers and u only c3 offers."""

    nodes: ClaudeNodes
    repo: Path
    res: subprocess.CompletedProcess[str]
    state: dict[str, Any]
    tasks: dict[str, dict[str, Any]]
    unfit: list[dict[str, Any]]  # its node_unfit events


@pytest.fixture(scope="module")
def _unfit_runs() -> dict[str, UnfitRun]:
    return {}


@pytest.fixture
def unfit_run(
    claude_nodes: ClaudeNodes,
    make_repo: Callable[..., Path],
    tmp_path: Path,
    _unfit_runs: dict[str, UnfitRun],
) -> UnfitRun:
    """The :class:`UnfitRun`, made by the first test that asks for it (the tests assert different things
    of the same run: each run costs a probe of every node and an agent per task)."""
    if "run" in _unfit_runs:
        return _unfit_runs["run"]
    nodes, key = claude_nodes, f"sk-ant-canary-{uuid.uuid4()}"
    nodes.spare({**system_programs(without="bwrap"), **programs_of(nodes.claude)})
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""}, config=CONFIG)
    plan = ws.plan(
        [
            *({"id": t, "title": t.upper(), "files": [f"src/{t}.py"]} for t in "xyz"),
            # only the head, which has no claude, offers `node_head`; only c3, which has no bwrap, `nobwrap`
            *(
                {
                    "id": t,
                    "title": t.upper(),
                    "files": [f"src/{t}.py"],
                    "depends_on": ["x"],
                    "ray": {"resources": {r: 1}},
                }
                for t, r in (("w", "node_head"), ("u", "nobwrap"))
            ),
        ]
    )
    nodes.stub.delay = 0.0  # where wave 1's groups run does not matter here
    nodes.stub.script = {
        t: [writes(f"src/{t}.py", f"{t.upper()} = 1\n"), *done(f"wrote {t}")] for t in "xyzwu"
    }
    with nodes.stub.lock:
        nodes.stub.requests.clear()  # earlier tests' tasks called the stub too
    res = _execute(nodes, ws.repo, plan, key)
    state = latest_state(ws.repo)
    unfit = [e for e in events(ws.repo) if e["type"] == "node_unfit"]
    _unfit_runs["run"] = UnfitRun(nodes, ws.repo, res, state, tasks_of(state), unfit)
    return _unfit_runs["run"]


def test_a_node_without_the_agent_cli_is_skipped_and_named_when_no_other_can_run_the_task(
    unfit_run: UnfitRun,
) -> None:
    run, cluster = unfit_run, unfit_run.nodes.cluster
    res, tasks = run.res, run.tasks
    head, c3 = cluster.label("head"), cluster.label("c3")
    # wave 1 ran on the nodes that have claude, whichever node each group was first placed on
    assert all(
        tasks[t]["state"] == "done" and cluster.name_of(tasks[t]["node"]) in ("w1", "w2") for t in "xyz"
    )
    assert [s.split()[2] for s, _ in wave_commits(run.repo, run.state)] == ["1"]  # finished work is kept
    # found before the run (a probe on each node): every node but w1 and w2 cannot run it, gets no task
    lacking = sorted(set(cluster.nodes) - {"w1", "w2"})
    assert lacking == ["c3", "head"]
    assert sorted(cluster.name_of(e["node"]) for e in run.unfit) == lacking
    assert all(e["task"] is None and e["node"].split("/")[1] in e["error"] for e in run.unfit)
    assert f"{head}: --agent claude-code: `claude` is not installed" in res.stderr
    assert "it gets no tasks of this run" in res.stderr
    # w: no node can run it; one line naming the head and what it lacks; the task is failed and resumable
    assert res.returncode != 0
    error = tasks["w"]["error"]
    assert tasks["w"]["state"] == "failed" and "\n" not in error
    assert error.startswith("no live Ray node can run the claude-code agent: node ") and head in error
    assert c3 not in error  # only the nodes that offer w's resources are named
    assert "`claude` is not installed or not on PATH" in error, error
    assert "Traceback" not in res.stderr and head in res.stderr + res.stdout
    assert not run.nodes.stub.main_requests("w")  # it never started anywhere


def test_no_node_with_the_agent_cli_is_one_line_and_exit_2_before_any_run_exists(
    claude_nodes: ClaudeNodes, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    codex = agent_cli("codex")  # here, not on any node's PATH
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""}, config=CONFIG)
    plan = ws.plan([{"id": "a", "title": "A", "files": ["src/a.py"]}])
    env = {**claude_nodes.env("unused"), "PATH": f"{codex.parent}:{os.environ['PATH']}"}
    branches_before = git(ws.repo, "branch", "--list")
    res = agentwaves(
        "execute", "--agent", "codex", "--executor", "ray", "--repo", ws.repo, "--plan", plan, env=env
    )
    assert res.returncode == 2, res.stderr + res.stdout
    errors = [line for line in res.stderr.splitlines() if "error" in line or "Traceback" in line]
    assert len(errors) == 1, res.stderr
    start, _, why = errors[0].partition(": --agent codex: `codex` is not installed or not on PATH")
    assert start.startswith("agentwaves: error: no Ray node can run the codex agent: nodes "), errors[0]
    assert set(claude_nodes.cluster.nodes) == {"head", "w1", "w2", "c3"}
    for name in claude_nodes.cluster.nodes:  # every node named once: they all lack codex
        assert start.count(claude_nodes.cluster.label(name)) == 1, name
    assert "npm install -g @openai/codex" in why and ";" not in why
    assert run_dirs(ws.repo) == []  # no run
    assert git(ws.repo, "branch", "--list") == branches_before  # no branch


def _x_on_w1_then(
    make_repo: Callable[..., Path], tmp_path: Path, task: str, resource: str
) -> tuple[Any, Path]:
    """A workspace and a plan: task x on node w1, then ``task`` (after x) asking for ``resource``."""
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""}, config=CONFIG)
    x = {"id": "x", "title": "X", "files": ["src/x.py"], "ray": {"resources": {"node_w1": 1}}}
    then = {"id": task, "title": task.upper(), "files": [f"src/{task}.py"], "depends_on": ["x"]}
    return ws, ws.plan([x, {**then, "ray": {"resources": {resource: 1}}}])


def test_a_node_that_loses_the_cli_after_the_probe_is_found_out_by_its_task_and_named(
    claude_nodes: ClaudeNodes, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    cluster = claude_nodes.cluster
    claude_nodes.spare({**system_programs(), **programs_of(claude_nodes.claude)})  # c3 has claude now
    # x on w1, never on c3 (c3 loses claude while x runs); v after x, on c3 only (`late`): c3 has
    # claude when the run starts, not when v is sent there
    ws, plan = _x_on_w1_then(make_repo, tmp_path, "v", "late")
    claude_nodes.stub.delay = 0.5
    claude_nodes.stub.script = {
        t: [writes(f"src/{t}.py", f"{t.upper()} = 1\n"), *done(f"wrote {t}")] for t in "xv"
    }
    with claude_nodes.stub.lock:
        claude_nodes.stub.requests.clear()  # earlier tests' task x called the stub too
    argv = ["execute", "--agent", "claude-code", "--executor", "ray", "--repo", ws.repo, "--plan", plan]
    proc = spawn(*argv, env=claude_nodes.env(f"sk-ant-canary-{uuid.uuid4()}"))
    try:
        # x's claude is running (on w1): only then does c3 lose claude
        wait_for(
            lambda: bool(claude_nodes.stub.main_requests("x")) or proc.poll() is not None,
            "x's claude calling the API",
            timeout=240,  # the probe may take its 60 s under load
        )
        assert proc.poll() is None, "\n".join(proc.communicate())
        (cluster.bin("c3") / "claude").unlink()
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    c3 = cluster.label("c3")
    tasks = tasks_of(latest_state(ws.repo))
    assert proc.returncode != 0 and "Traceback" not in err, err + out
    assert tasks["x"]["state"] == "done"  # finished work is kept
    unfit = [e for e in events(ws.repo) if e["type"] == "node_unfit"]
    assert not [e for e in unfit if e["node"].endswith(c3) and e["task"] is None]  # the probe found it fit
    found = [e for e in unfit if e["task"] == "v"]
    assert len(found) == 1 and found[0]["node"].endswith(c3), (unfit, tasks["v"], err)
    error = tasks["v"]["error"]
    assert tasks["v"]["state"] == "failed" and "\n" not in error
    assert error.startswith("no live Ray node can run the claude-code agent: node ") and c3 in error
    assert "`claude` is not installed or not on PATH" in error
    assert not claude_nodes.stub.main_requests("v")


def test_a_node_without_bubblewrap_is_skipped_and_named(unfit_run: UnfitRun) -> None:
    """c3 has claude but no bwrap: it gets no task of the run, the warning and the ``node_unfit`` event name
    it and bubblewrap, and the task only c3 could take fails with one line naming it; wave 1 is kept."""
    run, cluster = unfit_run, unfit_run.nodes.cluster
    res, tasks = run.res, run.tasks
    c3 = cluster.label("c3")
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert tasks["x"]["state"] == "done" and cluster.name_of(tasks["x"]["node"]) in ("w1", "w2")
    assert [s.split()[2] for s, _ in wave_commits(run.repo, run.state)] == ["1"]  # finished work is kept
    unfit = [e for e in run.unfit if c3 in e["node"]]
    assert len(unfit) == 1 and "bubblewrap (bwrap) is not installed" in unfit[0]["error"], unfit
    assert unfit[0]["task"] is None  # found by the probe, before the run: no task was sent there
    assert f"{c3}: bubblewrap (bwrap) is not installed" in res.stderr, res.stderr
    error = tasks["u"]["error"]
    assert tasks["u"]["state"] == "failed" and "\n" not in error and c3 in error, error
    assert "bubblewrap (bwrap) is not installed" in error, error
    assert not run.nodes.stub.main_requests("u")  # it never started anywhere
