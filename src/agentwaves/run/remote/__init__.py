"""The Ray executor: a group's tasks run on Ray nodes; scheduling, state, merges and wave commits stay here.

Nothing in this package imports Ray at import time: :func:`ray_available` only looks for the package, and
the modules that use it (:mod:`.runner`, :mod:`.worker`) import it inside functions. See docs/ray.md.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = "pip install 'agentwaves[ray]'"


def ray_available() -> bool:
    """Whether the ``ray`` package is installed (without importing it)."""
    return importlib.util.find_spec("ray") is not None
