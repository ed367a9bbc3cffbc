"""``clean --runs``: delete the run directories (state, events, logs, report) of runs cleaned for good.

A run directory is removed only when nothing of the run is left in git: no group branches kept (for
``resume``) and no integration branch kept (to ``land``). Its record is then of no further use to
agentwaves; ``landed.json`` goes with it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from agentwaves.review.land import dir_size
from agentwaves.state.store import runs_dir

GONE = ("deleted-landed", "deleted-forced", "absent")


def prune_run_dirs(state_dir: Path, results: list[dict[str, Any]]) -> None:
    """For each ``clean`` result, remove its run directory if the run left nothing behind; records
    ``run_dir_removed`` (bool) in the result and adds the bytes to its ``freed_bytes``."""
    for r in results:
        r["run_dir_removed"] = False
        if r["group_branches_kept"] or r["integration"] not in GONE:
            continue
        path = runs_dir(state_dir) / r["run"]
        if not path.is_dir():
            continue
        size = dir_size(path)
        shutil.rmtree(path)
        r["run_dir_removed"] = True
        r["freed_bytes"] += size
