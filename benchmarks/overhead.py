"""Git overhead of a run: agentwaves' pool + merge-tree versus a naive worktree-per-group script.

Both sides simulate 10 waves x 4 groups with a zero-latency "agent" that writes 2 files per group (one
existing file changed, one new file), in the same generated repository, sequentially, so only git work is
measured. ``python benchmarks/overhead.py [--quick]`` prints the result as JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

WAVES = 10
GROUPS = 4
_GIT_ID = ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "commit.gpgsign=false"]


def _git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def make_repo(path: Path, files: int) -> Path:
    """A repository of ``files`` small text files, 100 per directory, committed and packed."""
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "gc.auto", "0")
    for i in range(files):
        d = path / "src" / f"d{i // 100:04d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        (d / f"f{i:05d}.txt").write_text(f"file {i}\n" + "lorem ipsum dolor sit amet\n" * 6)
    _git(path, "add", "-A")
    _git(path, *_GIT_ID, "commit", "-q", "-m", "initial")
    _git(path, "gc", "-q")
    return path


def _agent(worktree: Path, wave: int, group: int, files: int) -> list[str]:
    """The zero-latency agent: change one existing file, add one new file; returns the paths written
    (what an agent's file tools record)."""
    i = (wave * GROUPS + group) * 37 % files
    changed = f"src/d{i // 100:04d}/f{i:05d}.txt"
    existing = worktree / changed
    existing.write_text(existing.read_text() + f"changed in wave {wave} by group {group}\n")
    added = f"out/g{group}/w{wave}.txt"
    new = worktree / added
    new.parent.mkdir(parents=True, exist_ok=True)
    new.write_text(f"new file from wave {wave}, group {group}\n")
    return [changed, added]


def agentwaves_way(repo: Path, work: Path, files: int) -> list[float]:
    """Pool with reuse + merge_wave + commit_wave, as the executor drives them for agents that only used
    their file tools; seconds per wave (the last includes the cleanup)."""
    from agentwaves.git.merge import commit_wave, merge_wave, wave_message
    from agentwaves.git.pool import WorktreePool
    from agentwaves.git.worktrees import (
        add_worktree,
        group_branch,
        integration_branch,
        remove_worktree,
    )

    run_id = "bench"
    ref = integration_branch(run_id)
    head = _git(repo, "rev-parse", "HEAD")
    times: list[float] = []
    start = time.perf_counter()
    integ = add_worktree(repo, work / "integration", ref, head)
    pool = WorktreePool(repo, work / "pool")
    for wave in range(WAVES):
        branches: list[tuple[str, str]] = []
        worktrees: list[Path] = []
        for g in range(GROUPS):  # all groups of a wave hold their worktree at once, as in a real run
            name = f"w{wave}-g{g}"
            wt = pool.acquire(name, group_branch(run_id, name), head)
            written = _agent(wt, wave, g, files)
            sha = pool.commit(wt, f"{name}: work", paths=written)  # as the executor commits a task
            assert sha is not None
            worktrees.append(wt)
            branches.append((name, sha))
        for wt, (_, sha) in zip(worktrees, branches, strict=True):
            pool.release(wt, clean_head=sha)
        result = merge_wave(repo, head, branches)
        assert result.tree is not None and not result.conflicts
        # the executor moves the integration branch only; its worktree is refreshed before a gate
        head = commit_wave(repo, head, result.tree, wave_message(run_id, wave + 1, f"wave {wave + 1}"), ref)
        now = time.perf_counter()
        times.append(now - start)
        start = now
    pool.close()
    remove_worktree(repo, integ)
    times[-1] += time.perf_counter() - start
    return times


def naive_way(repo: Path, work: Path, files: int) -> list[float]:
    """Fresh ``git worktree add`` per group per wave, commit, ``git merge`` in an integration worktree."""
    times: list[float] = []
    start = time.perf_counter()
    integ = work / "naive-integration"
    _git(repo, "worktree", "add", "-q", "-b", "naive/integration", str(integ), "HEAD")
    for wave in range(WAVES):
        head = _git(integ, "rev-parse", "HEAD")
        paths: list[tuple[str, Path]] = []
        for g in range(GROUPS):
            branch = f"naive/w{wave}-g{g}"
            wt = work / f"naive-w{wave}-g{g}"
            _git(repo, "worktree", "add", "-q", "-b", branch, str(wt), head)
            _agent(wt, wave, g, files)
            _git(wt, "add", "-A")
            _git(wt, *_GIT_ID, "commit", "-q", "-m", f"{branch}: work")
            paths.append((branch, wt))
        for branch, _ in paths:
            _git(integ, *_GIT_ID, "merge", "-q", "--no-ff", "--no-edit", branch)
        for _, wt in paths:
            _git(repo, "worktree", "remove", "--force", str(wt))
        now = time.perf_counter()
        times.append(now - start)
        start = now
    _git(repo, "worktree", "remove", "--force", str(integ))
    times[-1] += time.perf_counter() - start
    return times


def _timed(fn: Callable[[Path, Path, int], list[float]], files: int, tmp: Path, label: str) -> list[float]:
    repo = make_repo(tmp / f"{label}-repo", files)
    work = tmp / f"{label}-work"
    work.mkdir()
    return fn(repo, work, files)


def _steady_ms(times: list[float]) -> float:
    """Median wave time after the first wave (which creates the worktrees) and before cleanup."""
    return round(statistics.median(times[1:-1]) * 1000, 1)


def run(quick: bool = False) -> dict[str, object]:
    """Measure both ways on a repository of 20,000 files (quick: 2,000) and agentwaves on 2,000 files."""
    files = 2_000 if quick else 20_000
    with tempfile.TemporaryDirectory(prefix="agentwaves-bench-") as name:
        tmp = Path(name)
        ours = _timed(agentwaves_way, files, tmp, "aw")
        small = ours if files == 2_000 else _timed(agentwaves_way, 2_000, tmp, "small")
        naive = _timed(naive_way, files, tmp, "naive")
    agentwaves_s, naive_s = sum(ours), sum(naive)
    return {
        "files": files,
        "waves": WAVES,
        "groups": GROUPS,
        "agentwaves_s": round(agentwaves_s, 3),
        "naive_s": round(naive_s, 3),
        "overhead_ratio": round(agentwaves_s / naive_s, 3),
        "per_wave_ms": {"2000": _steady_ms(small), str(files): _steady_ms(ours)},
        "first_wave_ms": {"2000": round(small[0] * 1000, 1), str(files): round(ours[0] * 1000, 1)},
        "naive_per_wave_ms": _steady_ms(naive),
    }


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    print(json.dumps(run(quick="--quick" in sys.argv[1:]), indent=2))
