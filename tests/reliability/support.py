"""Shared helpers of the reliability suite: test repositories, subprocess runs, events, and fingerprints.

A :class:`Fingerprint` is taken before a run and compared after it. It covers everything a run must never
change: the user's branch, HEAD, index, working tree (every file, untracked and ignored ones too), the
repository's ``.git`` (config, HEAD, hooks, info, the refs outside agentwaves' own namespaces, and no object
lost), a sentinel folder beside the repository, and a bare remote the repository pushes to.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.helpers import git, user_snapshot

OWNED_REFS = ("refs/heads/agentwaves/", "refs/heads/agentwaves-groups/", "refs/agentwaves/")
FAST_RETRIES: dict[str, Any] = {"retry_initial_wait": 0.01, "retry_attempts": 3, "retry_after_cap": 5}
SUBPROCESS_TIMEOUT = 180.0


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------ repositories


@dataclass
class Workspace:
    """A user's repository with fast retries configured, a sentinel folder beside it and a bare remote."""

    repo: Path
    sentinel: Path
    remote: Path
    tmp: Path

    def plan(self, tasks: list[dict[str, Any]], name: str = "plan.yaml", feature: str = "test") -> Path:
        return write_yaml(self.tmp / name, {"feature": feature, "tasks": tasks})

    def script(self, data: dict[str, Any], name: str = "script.yaml") -> Path:
        return write_yaml(self.tmp / name, data)


def make_workspace(
    make_repo: Callable[..., Path],
    tmp_path: Path,
    *,
    files: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
    name: str = "repo",
) -> Workspace:
    """A committed repository (``agentwaves.yaml`` included, fast retries), plus an untracked and an ignored
    file in the user's checkout, a staged change, a sentinel folder and a bare remote named ``origin``."""
    settings = {**FAST_RETRIES, **(config or {})}
    repo = make_repo(
        {
            "README.md": "# demo\n",
            ".gitignore": "ignored.log\n",
            "agentwaves.yaml": yaml.safe_dump(settings, sort_keys=False),
            **(files or {}),
        },
        name=name,
    )
    sentinel = tmp_path / f"{name}-sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "secret.txt").write_text("do not touch\n")
    (sentinel / "sub" / "data.bin").write_bytes(bytes(range(256)))
    remote = tmp_path / f"{name}-remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    # the user's own uncommitted state, which a run must leave exactly as it is
    (repo / "notes.txt").write_text("untracked notes\n")
    (repo / "ignored.log").write_text("ignored\n")
    (repo / "README.md").write_text("# demo\nstaged edit\n")
    git(repo, "add", "README.md")
    scratch = tmp_path / f"{name}-files"
    scratch.mkdir()
    return Workspace(repo, sentinel, remote, scratch)


# ------------------------------------------------------------------------------------------ fingerprints


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """relative path -> type, mode and content (or link target) digest, never following symlinks."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        dirnames[:] = sorted(d for d in dirnames if (f"{rel_dir}/{d}" if rel_dir != "." else d) not in skip)
        for name in sorted(filenames) + [d for d in dirnames if (here / d).is_symlink()]:
            p = here / name
            rel = p.relative_to(root).as_posix()
            if rel in skip:
                continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = f"link:{os.readlink(p)}"
            elif stat.S_ISREG(st.st_mode):
                out[rel] = f"file:{oct(st.st_mode)}:{hashlib.sha256(p.read_bytes()).hexdigest()}"
            else:
                out[rel] = f"other:{oct(st.st_mode)}"
        for d in dirnames:
            out.setdefault(f"{(here / d).relative_to(root).as_posix()}/", "dir")
    return out


def _refs(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    refs = dict(line.split(" ", 1) for line in out.splitlines() if line)
    return {r: sha for r, sha in refs.items() if not r.startswith(OWNED_REFS)}


def objects(repo: Path) -> set[str]:
    out = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    return set(out.split())


@dataclass
class Fingerprint:
    user: tuple[str, str, str, str]
    worktree: dict[str, str]
    git_files: dict[str, str]
    refs: dict[str, str]
    objects: set[str]
    sentinel: dict[str, str]
    remote_refs: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def take(cls, ws: Workspace) -> Fingerprint:
        gd = ws.repo / ".git"
        git_files = {name: tree_digest(gd).get(name, "absent") for name in ("HEAD", "config", "description")}
        git_files |= {f"hooks/{k}": v for k, v in tree_digest(gd / "hooks").items()}
        git_files |= {f"info/{k}": v for k, v in tree_digest(gd / "info").items()}
        return cls(
            user=user_snapshot(ws.repo),
            worktree=tree_digest(ws.repo, skip=(".git", ".agentwaves")),
            git_files=git_files,
            refs=_refs(ws.repo),
            objects=objects(ws.repo),
            sentinel=tree_digest(ws.sentinel),
            remote_refs=_refs(ws.remote),
        )

    def assert_unchanged(self, ws: Workspace) -> None:
        """Everything outside agentwaves' own refs, objects and ``.agentwaves/`` is as it was."""
        now = Fingerprint.take(ws)
        assert now.user == self.user, "the user's branch, HEAD, index or status changed"
        assert now.worktree == self.worktree, "the user's working tree changed"
        assert now.git_files == self.git_files, ".git config, HEAD, hooks or info changed"
        assert now.refs == self.refs, "refs outside agentwaves' namespaces changed"
        assert self.objects <= now.objects, "objects were lost"
        assert now.sentinel == self.sentinel, "the sentinel folder beside the repository changed"
        assert now.remote_refs == self.remote_refs, "the remote changed"
        worktrees = git(ws.repo, "worktree", "list", "--porcelain").split("\n\n")
        paths = [Path(w.splitlines()[0].removeprefix("worktree ")) for w in worktrees if w.strip()]
        assert paths[0] == ws.repo.resolve()
        assert all(p.is_relative_to(ws.repo.resolve() / ".agentwaves" / "worktrees") for p in paths[1:])


# ------------------------------------------------------------------------------------------ running


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **(extra or {})}


def agentwaves(
    *args: str | Path,
    env: dict[str, str] | None = None,
    timeout: float = SUBPROCESS_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """``python -m agentwaves ARGS`` in a subprocess, bounded by ``timeout`` (so a hang fails the test)."""
    return subprocess.run(
        [sys.executable, "-m", "agentwaves", *map(str, args)],
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def agentwaves_forked(
    *args: str | Path,
    env: dict[str, str] | None = None,
    timeout: float = SUBPROCESS_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """:func:`agentwaves`, in a new process forked from a preloaded interpreter (``tests/e2e/forkserver.py``):
    the same CLI without Python's start-up. For tests that do not look at the process itself (its
    ``/proc`` entries, its command line or its initial environment)."""
    from tests.e2e.forkserver import forked

    return forked(*args, env=cli_env(env), timeout=timeout)


def spawn(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agentwaves", *map(str, args)],
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def run_dirs(repo: Path) -> list[Path]:
    root = repo / ".agentwaves" / "runs"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def events(repo: Path) -> list[dict[str, Any]]:
    """The latest run's events (complete lines only)."""
    dirs = run_dirs(repo)
    if not dirs:
        return []
    path = dirs[-1] / "events.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``predicate`` until it holds; fail (not hang) after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def tasks_of(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for w in state["waves"] for g in w["groups"] for t in g["tasks"]}


def groups_of(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for w in state["waves"] for g in w["groups"]}


def transcript(repo: Path, task: str) -> list[dict[str, Any]]:
    path = run_dirs(repo)[-1] / "logs" / f"{task}.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tool_results(repo: Path, task: str) -> list[dict[str, Any]]:
    """The task's tool calls with their results, in order (``name``, ``input``, ``result``, ``is_error``)."""
    return [r["data"] for r in transcript(repo, task) if r["kind"] == "tool"]


def group_commits(repo: Path, state: dict[str, Any], group: str) -> list[str]:
    """Subjects of the commits a group branch has on top of its base, oldest first."""
    g = groups_of(state)[group]
    out = git(repo, "log", "--reverse", "--format=%s", f"{g['base']}..{g['branch']}")
    return out.splitlines()
