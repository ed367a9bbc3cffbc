"""The Ray executor on a real two-node Ray cluster (one machine, one scratch directory per node).

Every test runs the real CLI in a subprocess connected with ``RAY_ADDRESS``; only the model's answers are
scripted (the fake LLM). Marked ``ray``: they share one cluster (tests/raycluster/conftest.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import git, latest_state, tree_files, wave_commits
from tests.raycluster.conftest import RayCluster
from tests.reliability.support import agentwaves, events, make_workspace, tasks_of

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TASKS = [
    {"id": "a", "title": "A", "files": ["src/a.py"], "estimate": 2},
    {"id": "b", "title": "B", "files": ["src/b.py"], "estimate": 2},
    {"id": "c", "title": "C", "files": ["src/c.py"], "depends_on": ["a", "b"], "estimate": 1},
]


def _ws(make_repo: Callable[..., Path], tmp_path: Path, name: str, ray: bool) -> tuple[Path, Path]:
    config = {"ray_resources": {"num_cpus": 0.5}}  # the same file in both: trees are compared
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""}, config=config, name=name)
    return ws.repo, ws.plan(TASKS)


def _run(repo: Path, plan: Path, *extra: str, env: dict[str, str] | None = None) -> dict:
    res = agentwaves(
        "execute", "--repo", repo, "--plan", plan, "--llm", "fake", "--sandbox", "none", *extra, env=env
    )
    assert res.returncode == 0, res.stderr + res.stdout
    return latest_state(repo)


def test_groups_run_on_both_nodes_and_the_tree_equals_a_local_run(
    ray_cluster: RayCluster, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    env = {"RAY_ADDRESS": ray_cluster.address}
    local_repo, local_plan = _ws(make_repo, tmp_path, "local", ray=False)
    ray_repo, ray_plan = _ws(make_repo, tmp_path, "remote", ray=True)
    local = _run(local_repo, local_plan, "--fake-time-scale", "0.2")
    remote = _run(ray_repo, ray_plan, "--fake-time-scale", "0.2", "--executor", "ray", env=env)

    assert remote["state"] == "done" and remote["settings"]["executor"] == "ray"
    tasks = tasks_of(remote)
    nodes = {t["node"] for t in tasks.values()}
    assert len({tasks["a"]["node"], tasks["b"]["node"]}) == 2, nodes  # wave 1's groups: one per node
    assert all(n and "/" in n for n in nodes)
    local_commits, remote_commits = wave_commits(local_repo, local), wave_commits(ray_repo, remote)
    assert [s.split()[2] for s, _ in remote_commits] == ["1", "2"]  # one commit per wave
    assert len(local_commits) == len(remote_commits)
    assert tree_files(ray_repo, remote["branch"]) == tree_files(local_repo, local["branch"])
    # the task commits came back, verified, onto the group branches here
    for tid in "abc":
        assert git(ray_repo, "cat-file", "-t", tasks[tid]["commit"]) == "commit"
    # each node worked in its own scratch directory, from its own cache
    for name in ("head", "w1"):
        assert list((ray_cluster.scratch(name) / "cache").glob("*.git")), name
    # live progress from the nodes reached events.jsonl, with the node
    seen = [e for e in events(ray_repo) if e["type"] in ("model_call", "tool", "usage")]
    assert {e["task"] for e in seen} == {"a", "b", "c"} and all(e.get("node") in nodes for e in seen)
    status = json.loads(agentwaves("status", "--json", "--repo", ray_repo).stdout)
    assert {t["node"] for w in status["waves"] for g in w["groups"] for t in g["tasks"]} == nodes
    local_nodes = {t["node"] for t in tasks_of(local).values()}
    assert len(local_nodes) == 1 and None not in local_nodes
