"""Codex and ACP agents on Ray nodes: the real pinned ``codex`` and the real Codex ACP adapter (``codex-acp``)
on nodes of the shared cluster, against the scripted Responses API stub on 127.0.0.1 (the nodes run on this
machine, so they reach it).

Before each test the shared worker nodes get this module's CLIs in their ``bin`` folders (as
``test_ray_agents`` gives them ``claude``): ``w1`` has ``codex`` and ``codex-acp`` on PATH, ``w2`` only
``codex``; each has its own HOME (an empty ``~/.codex``: no login, no config) and scratch dir, and neither
has a key or the stub's URL in its environment. Only the head has them (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``); it passes them at call time.
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

from agentwaves.llm.base import Usage
from agentwaves.llm.usage import cost_usd
from tests.agentcli import agent_cli
from tests.agents.codex_support import MODEL, done, shell
from tests.agents.stub_responses import ResponsesStub
from tests.e2e.helpers import git, latest_state, tree_files, wave_commits
from tests.raycluster.conftest import RayCluster, programs_of
from tests.reliability.support import agentwaves, events, make_workspace, tasks_of

pytestmark = [pytest.mark.ray, pytest.mark.slow]

RESOURCES = {"num_cpus": 0.5, "resources": {"openai": 1}}


@dataclass
class OpenAINodes:
    cluster: RayCluster
    stub: ResponsesStub
    bins: list[Path]  # the folders of the pinned codex and codex-acp
    root: Path

    def env(self, key: str) -> dict[str, str]:
        """The head's environment: the cluster, both CLIs on PATH, the key and the stub's URL, and a
        CODEX_HOME of its own (empty: no login, no config)."""
        home = self.root / f"head-codex-{uuid.uuid4().hex[:8]}"
        home.mkdir()
        return {
            "RAY_ADDRESS": self.cluster.address,
            "PATH": ":".join([*map(str, self.bins), os.environ["PATH"]]),
            "CODEX_HOME": str(home),
            "OPENAI_API_KEY": key,
            "OPENAI_BASE_URL": self.stub.url,
        }

    def places(self, repo: Path) -> list[str]:
        """Where the key must never be written: the run's files, the nodes' dirs, Ray's session logs."""
        session = Path(self.cluster.nodes["head"].get_session_dir_path())
        places = [repo / ".agentwaves", session]
        for name in ("w1", "w2"):
            places += [self.cluster.scratch(name), self.cluster.home(name)]
        return [str(p) for p in places]


@pytest.fixture(scope="module")
def responses_stub() -> Iterator[ResponsesStub]:
    stub = ResponsesStub().start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def openai_nodes(ray_cluster: RayCluster, responses_stub: ResponsesStub) -> OpenAINodes:
    """w1 with codex and codex-acp, w2 with codex only (set before each test: another module's tests give
    the shared nodes other CLIs)."""
    codex, codex_acp = agent_cli("codex"), agent_cli("codex-acp")
    ray_cluster.provide("w1", programs_of(codex, codex_acp))
    ray_cluster.provide("w2", programs_of(codex))
    return OpenAINodes(ray_cluster, responses_stub, [codex.parent, codex_acp.parent], ray_cluster.root)


def two_waves(
    nodes: OpenAINodes, make_repo: Callable[..., Path], tmp_path: Path, config: dict[str, Any], pin: bool
) -> tuple[Path, Path]:
    """A repository and a 2-wave plan (b after a), each task writing its file with a shell command; with
    ``pin``, a on w1 and b on w2."""
    ws = make_workspace(make_repo, tmp_path, config={"ray_resources": RESOURCES, **config})
    tasks: list[dict[str, Any]] = [
        {"id": "a", "title": "A", "files": ["a.txt"]},
        {"id": "b", "title": "B", "files": ["b.txt"], "depends_on": ["a"]},
    ]
    if pin:
        for task, node in zip(tasks, ("w1", "w2"), strict=True):
            task["ray"] = {"resources": {f"node_{node}": 1}}
    nodes.stub.script = {
        "a": [shell("printf 'A\\n' > a.txt"), done("wrote a.txt", "a is first")],
        "b": [shell("printf 'B\\n' > b.txt"), done("wrote b.txt")],
    }
    with nodes.stub.lock:
        nodes.stub.requests.clear()
        nodes.stub.authorizations.clear()
    return ws.repo, ws.plan(tasks)


def check_run(nodes: OpenAINodes, repo: Path, res: subprocess.CompletedProcess[str], key: str) -> dict:
    """What both agents must show: two wave commits with the scripted files, the handoff in b's prompt,
    tool events with their node, the transcript in the head's task log, the key on no disk."""
    assert res.returncode == 0, res.stderr + res.stdout
    state = latest_state(repo)
    assert state["state"] == "done" and state["settings"]["executor"] == "ray"
    assert [s for s, _ in wave_commits(repo, state)] == [
        "agentwaves: wave 1 complete (a)",
        "agentwaves: wave 2 complete (b)",
    ]
    added = set(tree_files(repo, state["branch"])) - set(tree_files(repo, state["base"]))
    assert added == {"a.txt", "b.txt"}
    assert git(repo, "show", f"{state['branch']}:a.txt") == "A"
    assert git(repo, "show", f"{state['branch']}:b.txt") == "B"
    tasks = tasks_of(state)
    assert tasks["a"]["handoff"]["summary"] == "wrote a.txt"
    assert "a is first" in json.dumps(nodes.stub.requests_of("b")[0]["input"])  # b's prompt, on its node
    assert set(nodes.stub.authorizations) == {f"Bearer {key}"}  # the head's key (the nodes have none)
    tools = {(e["task"], e["node"]) for e in events(repo) if e["type"] == "tool"}
    assert {("a", tasks["a"]["node"]), ("b", tasks["b"]["node"])} <= tools
    log = agentwaves("logs", state["run_id"], "b", "--repo", repo).stdout
    assert "b.txt" in log and "wrote b.txt" in log and tasks["b"]["node"] in log
    found = subprocess.run(["grep", "-rlaF", key, *nodes.places(repo)], capture_output=True, text=True)
    assert found.stdout == "", found.stdout
    return tasks


def test_codex_runs_a_two_wave_plan_on_two_nodes(
    openai_nodes: OpenAINodes, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    nodes, key = openai_nodes, f"sk-canary-{uuid.uuid4()}"
    repo, plan = two_waves(nodes, make_repo, tmp_path, {"model": MODEL}, pin=True)
    res = agentwaves(
        "execute", "--agent", "codex", "--executor", "ray", "--repo", repo, "--plan", plan,
        env=nodes.env(key), timeout=150,
    )  # fmt: skip
    tasks = check_run(nodes, repo, res, key)
    assert [nodes.cluster.name_of(tasks[t]["node"]) for t in "ab"] == ["w1", "w2"]  # ran there
    # the probe made the codex backend on every node: those without `codex` are named, w1 and w2 are not
    unfit = [e for e in events(repo) if e["type"] == "node_unfit"]
    names = {nodes.cluster.name_of(e["node"]) for e in unfit}
    # every node of the shared cluster as it is now (c3 only once test_ray_agents has made it)
    assert "head" in names and names == set(nodes.cluster.nodes) - {"w1", "w2"}, unfit
    assert all("`codex` is not installed" in e["error"] for e in unfit)
    assert {r["model"] for r in nodes.stub.requests} == {MODEL}
    # usage: two responses per task (the command, then the handoff), priced with our table, on the head
    per_task = Usage(input_tokens=1600, output_tokens=100, cache_read_input_tokens=400)
    status = json.loads(agentwaves("status", "--json", "--repo", repo).stdout)
    assert status["usage"]["input_tokens"] == 2 * 1600
    assert status["usage"]["cache_read_input_tokens"] == 2 * 400
    assert status["usage"]["cost_usd"] == pytest.approx(2 * cost_usd(MODEL, per_task), rel=1e-3)
    listed = {t["id"]: t for w in status["waves"] for g in w["groups"] for t in g["tasks"]}
    assert {t: listed[t]["node"] for t in "ab"} == {t: tasks[t]["node"] for t in "ab"}


def test_acp_runs_a_two_wave_plan_on_the_node_that_has_its_agent_command(
    openai_nodes: OpenAINodes, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    nodes, key = openai_nodes, f"sk-canary-{uuid.uuid4()}"
    repo, plan = two_waves(nodes, make_repo, tmp_path, {"agent_command": "codex-acp", "model": MODEL}, False)
    res = agentwaves(
        "execute", "--agent", "acp", "--executor", "ray", "--repo", repo, "--plan", plan,
        env=nodes.env(key), timeout=150,
    )  # fmt: skip
    tasks = check_run(nodes, repo, res, key)
    # w2 has codex but not codex-acp: the probe named it, and it got no task
    w2 = nodes.cluster.label("w2")
    unfit = {e["node"]: e["error"] for e in events(repo) if e["type"] == "node_unfit"}
    missing = "`codex-acp` (agent_command) is not installed"
    assert any(n.endswith(w2) and missing in why for n, why in unfit.items()), unfit
    assert f"{w2}: --agent acp: `codex-acp` (agent_command) is not installed" in res.stderr, res.stderr
    assert [nodes.cluster.name_of(tasks[t]["node"]) for t in "ab"] == ["w1", "w1"]
    # codex-acp 0.16 reports no tokens: the usage reached the head as an unknown cost, per task and run
    status = json.loads(agentwaves("status", "--json", "--repo", repo).stdout)
    listed = {t["id"]: t for w in status["waves"] for g in w["groups"] for t in g["tasks"]}
    assert all(listed[t]["usage"]["cost_known"] is False for t in "ab")
    assert latest_state(repo)["usage"]["cost_known"] is False
