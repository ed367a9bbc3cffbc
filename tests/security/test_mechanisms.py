"""The mechanisms behind the hostile-agent tests, one level down (fast): hardened git drivers, the inert
renderer, the ``.git`` look-alikes, the race-free path walk and the host sockets the sandbox covers."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from agentwaves.agents.paths import PathRefused, is_dot_git, open_beneath, parent_beneath
from agentwaves.agents.sandbox import host_sockets
from agentwaves.run.gitops import commit_all, diff_stat, git, head_sha
from agentwaves.run.merge import merge_into
from agentwaves.ui.inert import inert, inert_data
from tests.e2e.helpers import git as plain_git


def _drivers(repo: Path, marker: Path) -> None:
    """The user's config defines drivers that run ``marker``-touching commands for every file."""
    touch = f"touch {marker}; cat"
    plain_git(repo, "config", "filter.evil.clean", touch)
    plain_git(repo, "config", "filter.evil.smudge", touch)
    plain_git(repo, "config", "filter.evil.required", "true")
    plain_git(repo, "config", "diff.evil.textconv", touch)
    plain_git(repo, "config", "merge.evil.driver", f"touch {marker}; exit 0")


def test_filters_textconv_and_merge_drivers_never_run(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    repo = make_repo({"README.md": "# r\n", "a.txt": "base\n"})
    marker = tmp_path / "driver-ran"
    _drivers(repo, marker)
    base = head_sha(repo)
    (repo / ".gitattributes").write_text("* filter=evil diff=evil merge=evil\n")
    (repo / "a.txt").write_text("ours\n")
    ours = commit_all(repo, "ours")
    assert ours and not marker.exists()
    assert [c.path for c in diff_stat(repo, base, ours)] == [".gitattributes", "a.txt"]
    git(repo, "log", "-p", "-1")
    git(repo, "reset", "-q", "--hard", base)
    (repo / ".gitattributes").write_text("* filter=evil diff=evil merge=evil\n")
    (repo / "a.txt").write_text("theirs\n")
    theirs = commit_all(repo, "theirs")
    assert theirs
    step = merge_into(repo, ours, theirs)
    assert step.conflicts == ["a.txt"]  # git's own text merge, not the driver's "exit 0"
    assert "<<<<<<<" in git(repo, "cat-file", "blob", f"{step.tree}:a.txt")
    assert not marker.exists()


def test_inert_shows_every_control_character() -> None:
    assert inert("a\x1b]52;c;eA==\x07b") == "a\\x1b]52;c;eA==\\x07b"
    assert inert("x\x9b2Jy\u202ez\r") == "x\\x9b2Jy\\u202ez\\x0d"
    assert inert("line\r\nnext\ttab\n") == "line\r\nnext\ttab\n"
    assert inert_data({"k\x1b": ["\x1b[1A", 3]}) == {"k\\x1b": ["\\x1b[1A", 3]}


@pytest.mark.parametrize(
    "part", [".git", ".GIT", ".git ", ".git.", ".Git. .", "git~1", "GIT~12", ".git::$DATA"]
)
def test_what_git_treats_as_dot_git(part: str) -> None:
    assert is_dot_git(part)


@pytest.mark.parametrize("part", [".github", ".gitignore", "git", "x.git", ".git-blame-ignore-revs", "git~"])
def test_ordinary_names_are_not_dot_git(part: str) -> None:
    assert not is_dot_git(part)


def test_the_walk_never_follows_a_link_out(tmp_path: Path) -> None:
    root, outside = tmp_path / "wt", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_text("s")
    (root / "in").symlink_to("d")
    (root / "d" / "f").write_text("inside")
    os.close(open_beneath(root, "in/f"))  # a link inside the worktree is resolved (by us)
    (root / "out").symlink_to(outside)
    (root / "up").symlink_to("../outside")
    (root / "git").symlink_to(".git")
    for path in ("out/secret", "up/secret", "d/../../outside/secret"):
        with pytest.raises(PathRefused):
            os.close(open_beneath(root, path))
    with pytest.raises(PathRefused, match="outside"), parent_beneath(root, "out/new"):
        pass
    assert not (outside / "new").exists()


def test_every_host_socket_outside_hidden_dirs_is_found() -> None:
    path = Path("/var/tmp") / f"aw-sock-{uuid.uuid4().hex[:10]}"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    try:
        assert str(path) in host_sockets()
    finally:
        sock.close()
        path.unlink()


def test_nothing_but_run_git_calls_git() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "agentwaves"
    out = subprocess.run(
        ["grep", "-rlE", r"\[\"git\"|'git',|\"git\", \"", str(src)], capture_output=True, text=True
    )
    assert [Path(p).name for p in out.stdout.split()] == ["githarden.py"]  # spawn(), used by run_git only
