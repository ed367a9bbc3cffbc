"""Ray resources of a task: CPUs, GPUs, memory and custom resources (``{"gpu_box": 1}``).

Set per task in the plan (``ray:``) or for every task in ``agentwaves.yaml`` (``ray_resources:``); a
task's own values win, key by key. Only the Ray executor reads them (docs/ray.md).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_BUILTIN = {"CPU", "GPU", "memory", "object_store_memory"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/-]*$")


def parse_size(value: Any) -> int:
    """Bytes from ``2G``, ``512MiB``, ``1.5GB`` or an integer; a ValueError naming the problem."""
    if isinstance(value, bool):
        raise ValueError("memory must be a size such as 2G or a number of bytes")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("memory must not be negative")
        return int(value)
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"memory {value!r} is not a size such as 2G, 512MiB or 1000000")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


class RayResources(BaseModel):
    """What one task reserves on a Ray node while it runs. Unset fields fall back to the config's."""

    model_config = ConfigDict(extra="forbid")

    num_cpus: float | None = Field(default=None, ge=0, le=1024, description="CPUs reserved (default 1).")
    num_gpus: float | None = Field(default=None, ge=0, le=64, description="GPUs reserved (default 0).")
    memory: int | None = Field(default=None, description="Memory reserved: bytes, or a size such as 2G.")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Custom Ray resources a node must offer, e.g. {gpu_box: 1}."
    )

    @field_validator("memory", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return None if v is None else parse_size(v)

    @field_validator("resources")
    @classmethod
    def _custom(cls, v: dict[str, float]) -> dict[str, float]:
        for name, amount in v.items():
            if name in _BUILTIN:
                raise ValueError(f"{name!r} is not a custom resource: use num_cpus, num_gpus or memory")
            if not _NAME.match(name):
                raise ValueError(f"invalid resource name {name!r}")
            if amount < 0:
                raise ValueError(f"resource {name!r} must not be negative")
        return v

    def over(self, base: RayResources | None) -> RayResources:
        """These values, with ``base``'s where unset (custom resources merged, these win)."""
        if base is None:
            return self
        return RayResources(
            num_cpus=self.num_cpus if self.num_cpus is not None else base.num_cpus,
            num_gpus=self.num_gpus if self.num_gpus is not None else base.num_gpus,
            memory=self.memory if self.memory is not None else base.memory,
            resources={**base.resources, **self.resources},
        )

    def ray_options(self) -> dict[str, Any]:
        """Keyword arguments of Ray's ``.options()``."""
        out: dict[str, Any] = {"num_cpus": 1.0 if self.num_cpus is None else self.num_cpus}
        if self.num_gpus:
            out["num_gpus"] = self.num_gpus
        if self.memory:
            out["memory"] = self.memory
        if self.resources:
            out["resources"] = dict(self.resources)
        return out

    def needs(self) -> dict[str, float]:
        """The request in Ray's node resource names (``CPU``, ``GPU``, ``memory``, custom)."""
        opts = self.ray_options()
        need = {"CPU": float(opts["num_cpus"])}
        if "num_gpus" in opts:
            need["GPU"] = float(opts["num_gpus"])
        if "memory" in opts:
            need["memory"] = float(opts["memory"])
        need.update(opts.get("resources", {}))
        return {k: v for k, v in need.items() if v > 0}
