"""``agentwaves status --watch``: the status of one run, refreshed until the run ends."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text

ENDED = ("done", "failed", "stopped", "interrupted")


def _signature(data: dict[str, Any]) -> str:
    """What a piped watch compares: states and counts, not the clock."""
    tasks = [
        (t["id"], t["state"], t["attempts"], t["stuck_for_s"] is not None)
        for w in data["waves"]
        for g in w["groups"]
        for t in g["tasks"]
    ]
    return json.dumps([data["state"], data["progress"], [w["commit"] for w in data["waves"]], tasks])


def watch_status(
    repo: Path,
    run_id: str | None,
    *,
    interval: float,
    json_out: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Show the run's status every ``interval`` seconds until it is no longer running; return its final
    state. On a terminal the display is redrawn in place; piped, a new status is printed only when
    something changed (with ``--json``, one JSON document per line)."""
    from agentwaves.review.inspect import open_run, status_data
    from agentwaves.ui.status import render_status
    from agentwaves.ui.term import console

    out = console()
    live = None
    if out.is_terminal and not json_out:
        from rich.live import Live

        live = Live(console=out, auto_refresh=False, transient=False)
        live.start()
    last = ""
    try:
        while True:
            ref = open_run(repo, run_id)
            run_id = ref.run_id  # stay on this run even if a newer one starts
            data = status_data(ref)
            if live is not None:
                with out.capture() as captured:
                    render_status(data, out)
                live.update(Text.from_ansi(captured.get()), refresh=True)
            elif _signature(data) != last:
                if json_out:
                    print(json.dumps(data, default=str), flush=True)
                else:
                    if last:
                        out.print()
                    render_status(data, out)
                    sys.stdout.flush()
                last = _signature(data)
            if data["state"] in ENDED and not data["live"]:
                return str(data["state"])
            sleep(interval)
    finally:
        if live is not None:
            live.stop()
