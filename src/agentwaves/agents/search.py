"""The `search` tool's matching, in a child process with a time limit.

Python's ``re`` cannot be interrupted, and a pattern such as ``(a+)+$`` backtracks for hours on one long
line: matched in-process, an agent's bad pattern would hang its task for good. The parent confines and
lists the files (:mod:`agentwaves.agents.tools`); this child reads them, opening each path component by
component from the worktree root with ``O_NOFOLLOW`` (never through a symlink, even one swapped in after the
listing), and matches, and is killed when the time is up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

SEARCH_TIMEOUT = 20.0  # seconds for one search call

_CHILD = r"""
import json, os, re, stat, sys
req = json.load(sys.stdin)
rx = re.compile(req["pattern"])
lines, size = [], 0
root = os.open(req["root"], os.O_RDONLY | os.O_DIRECTORY)
NOFOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK

def open_beneath(rel):
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    fd = os.dup(root)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, NOFOLLOW | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)

for rel, path in req["files"]:
    try:  # no symlink, no FIFO or device: regular files only
        fd = open_beneath(path)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                continue
            data = fh.read(req["max_file_bytes"] + 1)
    except OSError:
        continue
    if len(data) > req["max_file_bytes"] or b"\0" in data[:8192]:
        continue
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if rx.search(line):
            hit = f"{rel}:{number}: {line[: req['max_line']]}"
            if len(lines) >= req["max_matches"] or size + len(hit) > req["max_output"]:
                print(json.dumps({"lines": lines, "truncated": True}))
                sys.exit(0)
            lines.append(hit)
            size += len(hit) + 1
print(json.dumps({"lines": lines, "truncated": False}))
"""


class SearchTimeout(Exception):
    """The pattern took longer than the limit (it backtracks too much)."""


@dataclass
class Matches:
    lines: list[str]
    truncated: bool


def match_files(
    pattern: str,
    files: list[tuple[str, str]],
    *,
    max_matches: int,
    max_line: int,
    max_output: int,
    max_file_bytes: int,
    root: str = "/",
    timeout: float = SEARCH_TIMEOUT,
) -> Matches:
    """Lines of ``files`` (``(shown name, path relative to root)``) matching ``pattern``, in order, bounded.

    Raises :class:`SearchTimeout` when the child does not finish in ``timeout`` seconds (it is killed).
    The pattern must already compile (the caller reports ``re.error`` itself)."""
    request = {
        "pattern": pattern,
        "root": root,
        "files": files,
        "max_matches": max_matches,
        "max_line": max_line,
        "max_output": max_output,
        "max_file_bytes": max_file_bytes,
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _CHILD],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env={},
        )
    except subprocess.TimeoutExpired:
        raise SearchTimeout(f"search took more than {timeout:g} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"search failed: {last}")
    out = json.loads(proc.stdout)
    return Matches(list(out["lines"]), bool(out["truncated"]))


__all__ = ["SEARCH_TIMEOUT", "Matches", "SearchTimeout", "match_files"]
