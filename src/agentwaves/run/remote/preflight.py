"""Before a Ray run exists: which nodes cannot run the run's agent (its CLI or bubblewrap is missing)?

One small Ray task pinned to each live node (0 CPUs) makes the agent's backend there as a task would
(:func:`agentwaves.run.remote.worker.probe_node`). If no node can, the run does not start: one line naming
each node and what it lacks, exit code 2. Otherwise the nodes that cannot are left out of the run from the
start (a warning names them). A node that does not answer in time is not judged: its first task finds out.
"""

from __future__ import annotations

from typing import Any

from agentwaves.errors import UsageError

PROBE_TIMEOUT = 60.0  # seconds for every node to answer (a node's first Ray worker takes a few)


def unfit_nodes(backend: str, agent: dict[str, Any], sandbox: str) -> dict[str, str]:
    """Node id → why it cannot run ``backend``; a one-line UsageError when no live node can."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from agentwaves.run.remote import worker

    if backend == "builtin" and sandbox != "bwrap":
        return {}  # nothing a node could lack: agentwaves itself is there (Ray runs it)
    probe = ray.remote(worker.probe_node)
    refs = {
        node["NodeID"]: probe.options(
            num_cpus=0,
            max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
        ).remote(backend, agent, sandbox)
        for node in ray.nodes()
        if node.get("Alive")
    }
    if not refs:
        return {}
    ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=PROBE_TIMEOUT)
    unfit: dict[str, str] = {}
    for node_id, ref in refs.items():
        if ref not in ready:
            continue
        try:
            why = ray.get(ref)
        except Exception:  # the node died meanwhile: placement finds out
            continue
        if why:
            unfit[node_id] = why
    if len(unfit) == len(refs):
        raise UsageError(f"no Ray node can run the {backend} agent: {grouped(list(unfit.values()))}")
    return unfit


def grouped(reasons: list[str]) -> str:
    """``node A: why; node B: why`` as ``nodes A, B: why`` (a cluster of like nodes: one short line)."""
    by_why: dict[str, list[str]] = {}
    for reason in reasons:
        label, _, why = reason.removeprefix("node ").partition(": ")
        by_why.setdefault(why, []).append(label)
    return "; ".join(
        f"{'nodes' if len(labels) > 1 else 'node'} {', '.join(labels)}: {why}"
        for why, labels in by_why.items()
    )
