"""Per-group overhead of the Ray executor against a local worktree, on 2,000- and 20,000-file repositories.

One Ray session (a local single-node Ray, its own scratch directory) runs the real node code
(:func:`agentwaves.run.remote.worker.run_on_node`) with a zero-latency scripted agent that writes one
file, so what is measured is the executor's own cost per group:

- ``out_s``: the bundle of what the node lacks, made here (full for a node's first group, nothing when
  the node has the base, one commit when the base moved by one);
- ``call_s``: the Ray task: dispatch, moving the bundle, the node's fetch into its cache, worktree,
  agent, commit, bundle back, result;
- ``import_s``: verifying and importing the returned bundle onto the group branch here.

The local side is what a fresh group costs without Ray: ``git worktree add`` at the base, the same
one-file commit, ``git worktree remove``. ``python -m benchmarks --only ray``; see docs/benchmarks.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .overhead import make_repo

SIZES = (2_000, 20_000)
QUICK_SIZES = (500, 2_000)
_ID = ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "commit.gpgsign=false"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def _local_group(repo: Path, work: Path, i: int) -> float:
    t0 = time.perf_counter()
    wt = work / f"local-{i}"
    _git(repo, "worktree", "add", "-q", "-b", f"agentwaves-groups/bench/l{i}", str(wt), "HEAD")
    (wt / "out").mkdir(exist_ok=True)
    (wt / "out" / f"l{i}.txt").write_text("done\n")
    _git(wt, "add", "-A")
    _git(wt, *_ID, "commit", "-q", "-m", f"task l{i}")
    _git(repo, "worktree", "remove", "--force", str(wt))
    return time.perf_counter() - t0


def _script(tasks: list[str]) -> str:
    calls = {
        t: [
            {"tool": "write_file", "input": {"path": f"out/{t}.txt", "content": "done\n"}},
            {"tool": "finish", "input": {"summary": f"wrote out/{t}.txt"}},
        ]
        for t in tasks
    }
    return yaml.safe_dump({"tasks": calls})


def _remote_groups(ray: Any, repo: Path, files: int) -> list[dict[str, Any]]:
    from agentwaves.run.remote import transport, worker
    from agentwaves.run.remote.channel import RunChannel
    from agentwaves.run.remote.spec import LLMSpec, SecretEnv, TaskSpec

    channel = ray.remote(RunChannel).options(num_cpus=0).remote()
    run_on_node = ray.remote(worker.run_on_node).options(num_cpus=1, max_retries=0)
    haves_on_node = ray.remote(worker.haves_on_node).options(num_cpus=0)
    key = _git(repo, "rev-list", "--max-parents=0", "HEAD") + f"-{files}"
    tasks = ["g1", "g2", "g3"]
    llm = LLMSpec("fake", fake_script=_script(tasks))
    rows = []
    for i, name in enumerate(tasks):
        if name == "g3":  # the base moved by one commit (a wave was committed): one commit to send
            (repo / "wave.txt").write_text("wave 1\n")
            _git(repo, "add", "-A")
            _git(repo, *_ID, "commit", "-q", "-m", "wave 1")
        base = _git(repo, "rev-parse", "HEAD")
        branch = f"agentwaves-groups/bench{files}/{name}"
        _git(repo, "branch", "-f", branch, base)
        t0 = time.perf_counter()
        haves = ray.get(haves_on_node.remote(key))
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.bundle"
            sent = transport.bundle_out(repo, f"refs/heads/{branch}", base, haves, out)
            bundle = out.read_bytes() if sent else None
        out_s = time.perf_counter() - t0
        spec = TaskSpec("bench", key, name, branch, base, 41000 + i, {"id": name, "title": name}, 1, llm=llm)
        t1 = time.perf_counter()
        result = ray.get(run_on_node.remote(spec, bundle, SecretEnv({}), channel))
        call_s = time.perf_counter() - t1
        assert result.status == "done", result.error
        t2 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            back = Path(tmp) / "back.bundle"
            back.write_bytes(result.bundle)
            transport.import_task_bundle(repo, back, branch, base, name)
        import_s = time.perf_counter() - t2
        rows.append(
            {
                "group": name,
                "case": {"g1": "node's first group", "g2": "node has the base", "g3": "base moved by one"}[
                    name
                ],
                "bundle_out_kib": round(len(bundle) / 1024, 1) if bundle else 0,
                "bundle_back_kib": round(len(result.bundle) / 1024, 1),
                "out_s": round(out_s, 3),
                "call_s": round(call_s, 3),
                "node_prepare_s": result.timings.get("prepare_s"),
                "import_s": round(import_s, 3),
                "total_s": round(out_s + call_s + import_s, 3),
            }
        )
    ray.kill(channel)
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    try:
        import ray
    except ImportError:
        return {"skipped": "ray is not installed: pip install -e '.[ray]'"}
    sizes = QUICK_SIZES if quick else SIZES
    with tempfile.TemporaryDirectory(prefix="aw-bench-ray-") as tmp:
        root = Path(tmp)
        os.environ["AGENTWAVES_RAY_SCRATCH"] = str(root / "node")  # the node's own scratch directory
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        startup = time.perf_counter() - t0
        try:
            ray.get(ray.remote(lambda: None).options(num_cpus=0).remote())  # a worker process exists
            cases = []
            for files in sizes:
                repo = make_repo(root / f"repo{files}", files)
                # local before and after the remote groups: the machine's load drifts during a session
                local = [_local_group(repo, root, 0)]
                remote = _remote_groups(ray, repo, files)
                local += [_local_group(repo, root, i) for i in (1, 2)]
                cases.append(
                    {
                        "files": files,
                        "local_group_s": round(statistics.median(local), 3),
                        "local_groups_s": [round(x, 3) for x in local],
                        "ray_groups": remote,
                        "ray_over_local_first": round(remote[0]["total_s"] / statistics.median(local), 2),
                        "ray_over_local_next": round(remote[1]["total_s"] / statistics.median(local), 2),
                    }
                )
        finally:
            ray.shutdown()
    return {"ray_startup_s": round(startup, 2), "cases": cases}


def text(res: dict[str, Any]) -> list[str]:
    if "skipped" in res:
        return [f"Ray: skipped ({res['skipped']})"]
    out = [f"Ray per-group overhead (local Ray started in {res['ray_startup_s']} s)"]
    for c in res["cases"]:
        out.append(f"{c['files']} files: local worktree group {c['local_group_s']} s")
        for g in c["ray_groups"]:
            out.append(
                f"  {g['case']:<20} out {g['bundle_out_kib']:>8} KiB {g['out_s']:>6} s, "
                f"call {g['call_s']:>6} s (node prepare {g['node_prepare_s']} s), "
                f"import {g['import_s']:>6} s: total {g['total_s']} s"
            )
    return out
