"""The Ray executor on a real two-node Ray cluster (one machine, one scratch directory per node).

Every test runs the real CLI in a subprocess connected with ``RAY_ADDRESS``; only the model's answers are
scripted (the fake LLM). Marked ``ray``: they share one cluster (tests/raycluster/conftest.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import git, latest_state, tree_files, wave_commits
from tests.raycluster.conftest import RayCluster
from tests.reliability.support import (
    agentwaves,
    events,
    make_workspace,
    run_dirs,
    spawn,
    tasks_of,
    wait_for,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TASKS = [
    {"id": "a", "title": "A", "files": ["src/a.py"], "estimate": 2},
    {"id": "b", "title": "B", "files": ["src/b.py"], "estimate": 2},
    # c needs a custom resource only node w1 offers
    {
        "id": "c",
        "title": "C",
        "files": ["src/c.py"],
        "depends_on": ["a", "b"],
        "ray": {"resources": {"gpu_box": 1}},
    },
]
CONFIG = {"ray_resources": {"num_cpus": 0.5, "resources": {"worker": 1}}}


def _ws(make_repo: Callable[..., Path], tmp_path: Path, name: str) -> tuple[Path, Path]:
    # the same agentwaves.yaml in both repositories: their trees are compared
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""}, config=CONFIG, name=name)
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
    local_repo, local_plan = _ws(make_repo, tmp_path, "local")
    ray_repo, ray_plan = _ws(make_repo, tmp_path, "remote")
    local = _run(local_repo, local_plan, "--fake-time-scale", "0.2")
    remote = _run(ray_repo, ray_plan, "--fake-time-scale", "0.2", "--executor", "ray", env=env)

    assert remote["state"] == "done" and remote["settings"]["executor"] == "ray"
    tasks = tasks_of(remote)
    nodes = {t["node"] for t in tasks.values()}
    assert len({tasks["a"]["node"], tasks["b"]["node"]}) == 2, nodes  # wave 1's groups: one per node
    assert {ray_cluster.name_of(tasks[t]["node"]) for t in "ab"} == {"w1", "w2"}
    assert ray_cluster.name_of(tasks["c"]["node"]) == "w1"  # the only node with gpu_box
    local_commits, remote_commits = wave_commits(local_repo, local), wave_commits(ray_repo, remote)
    assert [s.split()[2] for s, _ in remote_commits] == ["1", "2"]  # one commit per wave
    assert len(local_commits) == len(remote_commits)
    assert tree_files(ray_repo, remote["branch"]) == tree_files(local_repo, local["branch"])
    # the task commits came back, verified, onto the group branches here
    for tid in "abc":
        assert git(ray_repo, "cat-file", "-t", tasks[tid]["commit"]) == "commit"
    # each node worked in its own scratch directory, from its own cache
    for name in ("w1", "w2"):
        assert list((ray_cluster.scratch(name) / "cache").glob("*.git")), name
    # live progress from the nodes reached events.jsonl, with the node
    seen = [e for e in events(ray_repo) if e["type"] in ("model_call", "tool", "usage")]
    assert {e["task"] for e in seen} == {"a", "b", "c"} and all(e.get("node") in nodes for e in seen)
    status = json.loads(agentwaves("status", "--json", "--repo", ray_repo).stdout)
    assert {t["node"] for w in status["waves"] for g in w["groups"] for t in g["tasks"]} == nodes
    local_nodes = {t["node"] for t in tasks_of(local).values()}
    assert len(local_nodes) == 1 and None not in local_nodes


def _wait_command(flag: Path) -> str:
    return f"for i in $(seq 2400); do [ -e '{flag}' ] && break; sleep 0.05; done; test -e '{flag}'"


def _blocking(flag: Path, path: str) -> list[dict[str, object]]:
    return [
        {"tool": "run", "input": {"command": _wait_command(flag), "timeout": 150}},
        {"tool": "write_file", "input": {"path": path, "content": f"# {path}\n"}},
        {"tool": "finish", "input": {"summary": f"wrote {path}"}},
    ]


def _state_tasks(repo: Path) -> dict:
    try:
        return tasks_of(latest_state(repo))
    except (OSError, ValueError, IndexError):
        return {}


def test_kill_9_of_agentwaves_then_resume_finishes_the_run(
    ray_cluster: RayCluster, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""}, config=CONFIG)
    flag = tmp_path / "flag-b"
    plan = ws.plan(
        [
            {"id": "a", "title": "A", "files": ["src/a.py"]},
            {"id": "b", "title": "B", "files": ["src/b.py"]},
            {"id": "c", "title": "C", "files": ["src/c.py"], "depends_on": ["a", "b"]},
        ]
    )
    script = ws.script({"tasks": {"b": _blocking(flag, "src/b.py")}})
    env = {"RAY_ADDRESS": ray_cluster.address}
    common = ("--repo", ws.repo, "--sandbox", "none")
    proc = spawn("execute", *common, "--plan", plan, "--llm", "fake", "--fake-script", script,
                 "--executor", "ray", env=env)  # fmt: skip
    try:
        wait_for(lambda: _state_tasks(ws.repo).get("a", {}).get("state") == "done"
                 and _state_tasks(ws.repo)["b"]["state"] == "running", "a done, b running")  # fmt: skip
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    killed = _state_tasks(ws.repo)
    flag.touch()
    resumed = agentwaves("resume", *common, env=env)  # the run's own settings: executor ray
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    state = latest_state(ws.repo)
    tasks = tasks_of(state)
    assert state["state"] == "done" and state["settings"]["executor"] == "ray"
    assert tasks["a"]["attempts"] == 1 and tasks["a"]["commit"] == killed["a"]["commit"]
    assert tasks["b"]["attempts"] == 2
    assert [s.split()[2] for s, _ in wave_commits(ws.repo, state)] == ["1", "2"]
    assert {"src/a.py", "src/b.py", "src/c.py"} <= set(tree_files(ws.repo, state["branch"]))


def _log_records(repo: Path, task: str) -> list[dict]:
    dirs = run_dirs(repo)
    log = dirs[-1] / "logs" / f"{task}.log" if dirs else None
    if log is None or not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.endswith("}")]


def test_a_remote_task_s_transcript_reaches_its_log_while_it_runs_and_once(
    ray_cluster: RayCluster, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""}, config=CONFIG)
    flag = tmp_path / "flag-t"
    plan = ws.plan([{"id": "t", "title": "T", "files": ["src/t.py"]}])
    script = ws.script({"tasks": {"t": _blocking(flag, "src/t.py")}})
    args = ("--repo", ws.repo, "--plan", plan, "--llm", "fake", "--fake-script", script, "--sandbox", "none")
    proc = spawn("execute", *args, "--executor", "ray", env={"RAY_ADDRESS": ray_cluster.address})
    try:
        # the agent is blocked in its `run`: what it did so far is already in the log here
        wait_for(lambda: any(r["kind"] == "assistant" for r in _log_records(ws.repo, "t")), "t's transcript")
        assert _state_tasks(ws.repo)["t"]["state"] == "running"
        flag.touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err + out
    kinds = [r["kind"] for r in _log_records(ws.repo, "t")]
    assert kinds.count("attempt") == 1 and kinds.count("node") == 1 and kinds.count("user") == 1, kinds
    assert kinds.count("assistant") == 3  # run, write_file, finish: each once


def test_the_api_key_reaches_only_the_agent_on_the_node_and_is_logged_nowhere(
    ray_cluster: RayCluster, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    from tests.llm.llm_support import Reply, message_body, start_stub_api

    key = f"sk-ant-canary-{uuid.uuid4()}"
    api, stop = start_stub_api()

    def use(name: str, **args: object) -> Reply:
        return Reply(
            body=message_body([{"type": "tool_use", "id": f"tu_{name}", "name": name, "input": args}])
        )

    api.queue(
        use("run", command="env > env.txt; echo key=$ANTHROPIC_API_KEY >> env.txt"),
        use("write_file", path="src/k.py", content="K = 1\n"),
        use("finish", summary="wrote src/k.py"),
    )
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""}, config=CONFIG)
    plan = ws.plan([{"id": "k", "title": "K", "files": ["src/k.py", "env.txt"]}])
    env = {"RAY_ADDRESS": ray_cluster.address, "ANTHROPIC_API_KEY": key, "ANTHROPIC_BASE_URL": api.url}
    try:
        state = _run(ws.repo, plan, "--executor", "ray", "--llm", "anthropic", env=env)
    finally:
        stop()
    assert state["state"] == "done"
    sent = [h.get("x-api-key") or h.get("authorization", "").removeprefix("Bearer ") for h in api.headers]
    assert sent and all(k == key for k in sent)  # the agent on the node had it
    # nowhere on disk: run files, git objects of the run, the nodes' scratch dirs, Ray's own logs
    session = Path(ray_cluster.nodes["head"].get_session_dir_path())
    places = [ws.repo / ".agentwaves", *(ray_cluster.scratch(n) for n in ("w1", "w2")), session]
    found = subprocess.run(["grep", "-rlaF", key, *map(str, places)], capture_output=True, text=True)
    assert found.stdout == "", found.stdout
    objects = git(ws.repo, "log", "-p", "--all", "--format=%B")
    assert key not in objects and "key=\n" in git(ws.repo, "show", f"{state['branch']}:env.txt") + "\n"


# it kills a worker node of the shared cluster: the last Ray test (tests/raycluster/conftest.py's
# KILLS_A_NODE); the `ray_cluster` fixture makes the node again for a test that comes after it
def test_a_node_killed_mid_task_the_task_is_retried_elsewhere_and_returned_commits_are_kept(
    ray_cluster: RayCluster, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    ws = make_workspace(make_repo, tmp_path, files={"src/__init__.py": ""}, config=CONFIG)
    flag = tmp_path / "flag-y"
    plan = ws.plan(
        [
            {"id": "x", "title": "X", "files": ["src/x.py"], "group": "g"},
            {"id": "y", "title": "Y", "files": ["src/y.py"], "group": "g", "depends_on": ["x"]},
            {"id": "z", "title": "Z", "files": ["src/z.py"]},
            {"id": "w", "title": "W", "files": ["docs/w.md"], "depends_on": ["y", "z"]},
        ]
    )
    script = ws.script({"tasks": {"y": _blocking(flag, "src/y.py")}})
    env = {"RAY_ADDRESS": ray_cluster.address}
    args = ("--repo", ws.repo, "--plan", plan, "--llm", "fake", "--fake-script", script, "--sandbox", "none")
    proc = spawn("execute", *args, "--executor", "ray", env=env)
    try:
        wait_for(lambda: _state_tasks(ws.repo).get("y", {}).get("node") is not None
                 and _state_tasks(ws.repo)["y"]["state"] == "running", "y running on a node")  # fmt: skip
        before = _state_tasks(ws.repo)
        assert before["x"]["state"] == "done" and before["x"]["node"] == before["y"]["node"]
        victim = ray_cluster.name_of(before["y"]["node"])
        ray_cluster.kill(victim)
        flag.touch()  # the orphaned wait of the killed attempt ends; the retry does not wait
        out, err = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err + out
    state = latest_state(ws.repo)
    tasks = tasks_of(state)
    assert state["state"] == "done"
    assert tasks["x"]["commit"] == before["x"]["commit"] and tasks["x"]["attempts"] == 1  # kept, not rerun
    assert tasks["y"]["node"] != before["y"]["node"] and tasks["y"]["state"] == "done"
    lost = [e for e in events(ws.repo) if e["type"] == "node_lost"]
    assert [e["task"] for e in lost] == ["y"] and lost[0]["node"] == before["y"]["node"]
    # y was retried on top of x's returned commit: one commit each on the group branch
    assert git(ws.repo, "rev-parse", f"{tasks['y']['commit']}^") == tasks["x"]["commit"]
    assert [s.split()[2] for s, _ in wave_commits(ws.repo, state)] == ["1", "2"]
    assert set(tree_files(ws.repo, state["branch"])) >= {"src/x.py", "src/y.py", "src/z.py", "docs/w.md"}
