"""One real multi-node Ray cluster on this machine, shared by every Ray test (start-up is slow), stopped
after the last of them (:func:`pytest_runtest_teardown`).

Each node has its own scratch directory (``AGENTWAVES_RAY_SCRATCH`` in the node's environment), HOME and
``bin`` folder first on its PATH, so what a node does never leans on the head's checkout. The two worker
nodes ``w1`` and ``w2`` serve every module: the builtin agent's tests ask for their ``worker`` resource, the
CLI agents' tests for ``claude`` or ``openai``, and each module puts the CLIs its tests need into the
nodes' ``bin`` folders before each test (:meth:`RayCluster.provide`): a node's workers look their programs
up on PATH when they run, so one node can have ``claude`` for one test and ``codex`` for the next, without
the seconds a new node costs (its raylet and agents) and with fewer nodes for every run's probe to visit.
The ``ray_cluster`` fixture makes a node a test killed again (:meth:`RayCluster.revive`). Skipped when
Ray is not installed, unless ``AGENTWAVES_REQUIRE_RAY=1`` (CI), which turns a missing Ray into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"  # git, bwrap, node and python's tools, but no agent CLI


@dataclass
class RayCluster:
    cluster: Any
    address: str
    root: Path
    bins: Path  # the nodes' `bin` folders: not under /tmp, which is private in bubblewrap's sandbox
    nodes: dict[str, Any] = field(default_factory=dict)  # name -> ray node
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> add()'s arguments
    stopped: bool = False

    def stop(self) -> None:
        """Shut the cluster down and remove the nodes' ``bin`` folders (once)."""
        if not self.stopped:
            self.stopped = True
            self.cluster.shutdown()
            shutil.rmtree(self.bins, ignore_errors=True)

    def add(
        self,
        name: str,
        num_cpus: float = 1,
        resources: dict[str, float] | None = None,
        env: dict[str, str] | None = None,
        worker: bool = True,
        path: str | None = None,
    ) -> Any:
        """A node (``worker`` resource: what the builtin tests' tasks ask for, unless ``worker`` is false)
        with its own scratch dir, HOME (with an empty ``~/.codex``: no login, no config) and ``bin``
        folder, PATH ``bin:path`` (``path`` None: this process's PATH; "": only ``bin``) and ``env`` in its
        environment."""
        self.specs[name] = dict(num_cpus=num_cpus, resources=resources, env=env, worker=worker, path=path)
        self.scratch(name).mkdir(parents=True, exist_ok=True)
        self.bin(name).mkdir(parents=True, exist_ok=True)
        (self.home(name) / ".codex").mkdir(parents=True, exist_ok=True)
        after = os.environ["PATH"] if path is None else path
        env = {
            "PATH": ":".join(filter(None, [str(self.bin(name)), after])),
            "HOME": str(self.home(name)),
            **(env or {}),
            "AGENTWAVES_RAY_SCRATCH": str(self.scratch(name)),
        }
        resources = {**({"worker": 10} if worker else {}), f"node_{name}": 1, **(resources or {})}
        node = self.cluster.add_node(num_cpus=num_cpus, resources=resources, env_vars=env)
        self.nodes[name] = node
        self.cluster.wait_for_nodes()
        return node

    def name_of(self, label: str) -> str:
        """The fixture's name of the node a ``tasks[].node`` label (``host/node-id-prefix``) names."""
        prefix = label.split("/", 1)[1]
        return next(name for name, n in self.nodes.items() if n.node_id.startswith(prefix))

    def label(self, name: str) -> str:
        """``/node-id-prefix`` of node ``name``: how labels, warnings and errors name it."""
        return f"/{self.nodes[name].node_id[:12]}"

    def kill(self, name: str) -> None:
        self.cluster.remove_node(self.nodes.pop(name), allow_graceful=False)

    def revive(self, name: str) -> None:
        """Node ``name`` again (a new Ray node with its old settings, scratch dir, HOME and ``bin``)."""
        if name not in self.nodes:
            self.add(name, **self.specs[name])

    def provide(self, name: str, programs: dict[str, Path]) -> None:
        """Exactly ``programs`` (program name -> its file) in node ``name``'s ``bin`` folder."""
        folder = self.bin(name)
        for entry in folder.iterdir():
            if entry.name not in programs or os.readlink(entry) != str(programs[entry.name]):
                entry.unlink()
        for program, target in programs.items():
            if not (folder / program).is_symlink():
                (folder / program).symlink_to(target)

    def scratch(self, name: str) -> Path:
        return self.root / name

    def home(self, name: str) -> Path:
        return self.root / f"{name}-home"

    def bin(self, name: str) -> Path:
        return self.bins / name


def programs_of(*clis: Path) -> dict[str, Path]:
    """Every program of the folders of ``clis`` (an npm ``.bin`` folder: the CLI and its helpers)."""
    return {entry.name: entry for cli in clis for entry in sorted(cli.parent.iterdir())}


def system_programs(without: str = "") -> dict[str, Path]:
    """Every program of :data:`SYSTEM_PATH` (the first of each name) but ``without``."""
    found: dict[str, Path] = {}
    for folder in map(Path, SYSTEM_PATH.split(":")):
        for entry in sorted(folder.iterdir()) if folder.is_dir() else ():
            if entry.name != without:
                found.setdefault(entry.name, entry)
    return found


@pytest.hookimpl(trylast=True)  # after tests/suite_order.py's slow_first has ordered the modules
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every Ray test on one pytest-xdist worker, so the suite starts one cluster, not one per worker;
    the tests of :data:`KILLS_A_NODE` after every other Ray test.

    pytest-xdist 3.8 no longer reads this mark under pytest 9.2; ``tests/suite_order.py`` groups the Ray
    tests by their path instead (the mark stays for an xdist that reads it again)."""
    for item in items:
        if "raycluster" in item.path.parts:
            item.add_marker(pytest.mark.xdist_group("ray"))
    last = [
        i for i in items if "raycluster" in i.path.parts and getattr(i, "originalname", "") in KILLS_A_NODE
    ]
    if last:
        rest = [i for i in items if i not in last]
        ray = [n for n, i in enumerate(rest) if "raycluster" in i.path.parts]
        at = ray[-1] + 1 if ray else len(rest)
        items[:] = rest[:at] + last + rest[at:]


# Tests that kill a worker node: last of the Ray tests, so that no test after them waits for the node to be
# made again (:func:`ray_cluster` makes it again for any test that does come after one).
KILLS_A_NODE = frozenset(
    {"test_a_node_killed_mid_task_the_task_is_retried_elsewhere_and_returned_commits_are_kept"}
)


def _require_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("AGENTWAVES_REQUIRE_RAY") == "1":
            pytest.fail("AGENTWAVES_REQUIRE_RAY=1 but ray is not installed: pip install -e '.[dev,ray]'")
        pytest.skip("ray is not installed (pip install 'agentwaves[ray]')")


@pytest.fixture(scope="session")
def ray_session() -> Iterator[RayCluster]:
    """A head node that hosts the event channel (and offers ``claude``, which it does not have), and the
    worker nodes ``w1`` (with ``gpu_box``) and ``w2``, which also offer the CLI agents' resources
    (``claude``, ``openai``): their ``bin`` folders start empty."""
    _require_ray()
    from ray.cluster_utils import Cluster

    root = Path(tempfile.mkdtemp(prefix="aw-ray-"))
    (root / "head").mkdir()
    system = {"health_check_period_ms": 500, "health_check_failure_threshold": 4}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            # no `worker`: the head node hosts the event channel, no builtin task; `claude` without the
            # CLI on its PATH: the agents' tests' node that lacks it
            "resources": {"node_head": 1, "claude": 10},
            "include_dashboard": False,
            "no_monitor": True,  # no autoscaler: the tests add and remove the nodes themselves
            "include_log_monitor": False,  # nothing streams the workers' logs (agentwaves: log_to_driver off)
            "env_vars": {"AGENTWAVES_RAY_SCRATCH": str(root / "head")},
            "_system_config": system,
        },
    )
    # a program found on a node's PATH must be at the same path inside the sandbox its agent runs in
    bins = Path(
        tempfile.mkdtemp(prefix="aw-ray-bin-", dir="/var/tmp" if os.access("/var/tmp", os.W_OK) else None)
    )
    rc = RayCluster(cluster, cluster.address, root, bins)
    rc.nodes["head"] = cluster.head_node
    agents = {"claude": 10, "openai": 10}
    rc.add("w1", resources={"gpu_box": 1, **agents})
    rc.add("w2", resources=agents)
    _running.append(rc)
    try:
        yield rc
    finally:
        rc.stop()


_running: list[RayCluster] = []  # the session's cluster, until the last Ray test of this worker ends


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the cluster after the last Ray test this process runs, not at the end of the session: an
    idle cluster of four nodes (GCS, raylets and their agents) keeps about a tenth of a core busy, for
    the minutes of other tests that follow on this worker. The Ray tests run one after another (one
    work unit, :func:`pytest_collection_modifyitems`), so the next item tells whether one follows."""
    if _running and (nextitem is None or "raycluster" not in nextitem.path.parts):
        _running.pop().stop()


@pytest.fixture
def ray_cluster(ray_session: RayCluster) -> RayCluster:
    """The session's cluster with both worker nodes (one a test killed is made again first)."""
    if ray_session.stopped:
        pytest.fail("the Ray cluster was stopped after the last Ray test: Ray tests must run in one block")
    for name in ("w1", "w2"):
        ray_session.revive(name)
    return ray_session


@pytest.fixture(scope="session")
def spare_node(ray_session: RayCluster) -> str:
    """``c3``: the CLI agents' tests' node that lacks a program (no ``worker``; ``claude`` and the resources
    only it offers). Its PATH is only its ``bin`` folder, which holds the system's programs
    (:func:`system_programs`) and no agent CLI; a test that changes that restores it."""
    only_here = {"claude": 10, "late": 10, "nobwrap": 10}
    ray_session.add("c3", resources=only_here, worker=False, path="")
    ray_session.provide("c3", system_programs())
    return "c3"
