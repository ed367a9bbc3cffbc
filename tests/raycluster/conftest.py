"""One real multi-node Ray cluster on this machine, shared by every Ray test (start-up is slow).

Each node has its own scratch directory (``AGENTWAVES_RAY_SCRATCH`` in the node's environment), so what a
node does never leans on the head's checkout. Skipped when Ray is not installed, unless
``AGENTWAVES_REQUIRE_RAY=1`` (CI), which turns a missing Ray into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@dataclass
class RayCluster:
    cluster: Any
    address: str
    root: Path
    nodes: dict[str, Any] = field(default_factory=dict)  # name -> ray node

    def add(
        self,
        name: str,
        num_cpus: float = 1,
        resources: dict[str, float] | None = None,
        env: dict[str, str] | None = None,
        worker: bool = True,
    ) -> Any:
        """A worker node (``worker`` resource: what the tests' tasks ask for, unless ``worker`` is
        false) with its own scratch dir and ``env`` in its environment (its raylet's and workers')."""
        scratch = self.root / name
        scratch.mkdir(parents=True, exist_ok=True)
        env = {**(env or {}), "AGENTWAVES_RAY_SCRATCH": str(scratch)}
        resources = {**({"worker": 10} if worker else {}), f"node_{name}": 1, **(resources or {})}
        node = self.cluster.add_node(num_cpus=num_cpus, resources=resources, env_vars=env)
        self.nodes[name] = node
        self.cluster.wait_for_nodes()
        return node

    def name_of(self, label: str) -> str:
        """The fixture's name of the node a ``tasks[].node`` label (``host/node-id-prefix``) names."""
        prefix = label.split("/", 1)[1]
        return next(name for name, n in self.nodes.items() if n.node_id.startswith(prefix))

    def kill(self, name: str) -> None:
        self.cluster.remove_node(self.nodes.pop(name), allow_graceful=False)

    def scratch(self, name: str) -> Path:
        return self.root / name


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every Ray test on one pytest-xdist worker, so the suite starts one cluster, not one per worker.

    pytest-xdist 3.8 no longer reads this mark under pytest 9.2; ``tests/suite_order.py`` groups the Ray
    tests by their path instead (the mark stays for an xdist that reads it again)."""
    for item in items:
        if "raycluster" in item.path.parts:
            item.add_marker(pytest.mark.xdist_group("ray"))


def _require_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("AGENTWAVES_REQUIRE_RAY") == "1":
            pytest.fail("AGENTWAVES_REQUIRE_RAY=1 but ray is not installed: pip install -e '.[dev,ray]'")
        pytest.skip("ray is not installed (pip install 'agentwaves[ray]')")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    _require_ray()
    from ray.cluster_utils import Cluster

    root = Path(tempfile.mkdtemp(prefix="aw-ray-"))
    (root / "head").mkdir()
    system = {"health_check_period_ms": 500, "health_check_failure_threshold": 4}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "resources": {"node_head": 1},  # no `worker`: the head node only hosts the event channel
            "include_dashboard": False,
            "env_vars": {"AGENTWAVES_RAY_SCRATCH": str(root / "head")},
            "_system_config": system,
        },
    )
    rc = RayCluster(cluster, cluster.address, root)
    rc.nodes["head"] = cluster.head_node
    rc.add("w1", resources={"gpu_box": 1})
    rc.add("w2")
    try:
        yield rc
    finally:
        cluster.shutdown()
