"""The worktree pool and the integration worktree: fresh, reused, recovered, copied files, setup, threads."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agentwaves.errors import UsageError
from agentwaves.git.ops import GitError, branch_exists, commit_all, head_sha
from agentwaves.git.pool import SetupError, WorktreePool
from agentwaves.git.worktrees import (
    add_worktree,
    group_branch,
    integration_branch,
    list_worktrees,
    prune,
    remove_worktree,
)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def user_view(repo: Path) -> tuple[str, str, str]:
    return sh(repo, "rev-parse", "HEAD"), sh(repo, "symbolic-ref", "HEAD"), sh(repo, "status", "--porcelain")


@pytest.fixture
def repo(make_repo: Callable[..., Path]) -> Path:
    r = make_repo(
        {
            "README.md": "# demo\n",
            "src/app.py": "print('hi')\n",
            ".gitignore": "node_modules/\nbuild/\n*.local\n",
        }
    )
    (r / ".env").write_text("SECRET=1\n")
    (r / "node_modules" / "dep" / "lib").mkdir(parents=True)
    (r / "node_modules" / "dep" / "lib" / "index.js").write_text("module.exports = 1\n")
    (r / "node_modules" / ".bin").mkdir()
    os.symlink("../dep/lib/index.js", r / "node_modules" / ".bin" / "dep")
    (r / "config").mkdir()
    (r / "config" / "db.local").write_text("db\n")
    (r / "config" / "api.local").write_text("api\n")
    return r


def test_branch_names() -> None:
    assert integration_branch("20240101-ab") == "agentwaves/20240101-ab"
    assert group_branch("20240101-ab", "api") == "agentwaves-groups/20240101-ab/api"
    for bad in ("", "a b", "../x", "a..b", "x.lock", "-x", "a/b", "a:b"):
        with pytest.raises(UsageError):
            group_branch("run", bad)
    with pytest.raises(UsageError):
        integration_branch("bad id")


def test_fresh_worktree_with_copies(repo: Path, tmp_path: Path) -> None:
    before = user_view(repo)
    pool = WorktreePool(
        repo, tmp_path / "wt", copy_files=[".env", "node_modules/", "config/*.local", "nope.txt"]
    )
    base = head_sha(repo)
    wt = pool.acquire("api", group_branch("r1", "api"), "main")
    assert wt == (tmp_path / "wt" / "api").resolve()
    assert sh(wt, "symbolic-ref", "--short", "HEAD") == "agentwaves-groups/r1/api"
    assert sh(wt, "rev-parse", "HEAD") == base
    assert (wt / "src" / "app.py").read_text() == "print('hi')\n"
    assert (wt / ".env").read_text() == "SECRET=1\n"
    assert (wt / "node_modules" / "dep" / "lib" / "index.js").exists()
    assert os.readlink(wt / "node_modules" / ".bin" / "dep") == "../dep/lib/index.js"
    assert (wt / "config" / "db.local").read_text() == "db\n"
    assert not (wt / "nope.txt").exists()
    assert pool.untracked_copies(wt) == [".env"]
    (wt / "src" / "new.py").write_text("x = 1\n")
    sha = pool.commit(wt, "work")
    assert sha is not None
    assert sh(wt, "show", "--name-only", "--format=", "HEAD") == "src/new.py"
    assert pool.commit(wt, "again") is None
    pool.close()
    assert user_view(repo) == before


def test_copy_files_must_stay_inside_the_repo(repo: Path, tmp_path: Path) -> None:
    pool = WorktreePool(repo, tmp_path / "wt", copy_files=["../outside"])
    with pytest.raises(UsageError, match="inside the repository"):
        pool.acquire("a", group_branch("r1", "a"), "main")
    assert [w.path for w in list_worktrees(repo)] == [repo.resolve()]


def test_release_and_reuse_resets_but_keeps_ignored_files(repo: Path, tmp_path: Path) -> None:
    count = tmp_path / "setup-count"
    pool = WorktreePool(
        repo, tmp_path / "wt", copy_files=[".env"], setup=f"echo $MARK >> {count}", setup_env={"MARK": "set"}
    )
    wt = pool.acquire("w1-api", group_branch("r1", "api"), "main")
    (wt / "README.md").write_text("changed by agent\n")
    (wt / "scratch.txt").write_text("untracked\n")
    (wt / "build").mkdir()
    (wt / "build" / "cache.o").write_text("cached\n")
    (wt / ".env").write_text("tampered\n")
    (wt / "committed.txt").write_text("c\n")
    sh(wt, "add", "committed.txt")
    sh(wt, "commit", "-q", "-m", "group work")
    pool.release(wt)
    assert sh(wt, "rev-parse", "--abbrev-ref", "HEAD") == "HEAD"  # detached: the branch is free
    (repo / "src" / "app.py").write_text("print('wave 2')\n")
    sh(repo, "commit", "-qam", "wave 1 landed")
    base = head_sha(repo)

    wt2 = pool.acquire("w2-web", group_branch("r1", "web"), base)
    assert wt2 == (tmp_path / "wt" / "w2-web").resolve()
    assert not wt.exists()  # the released worktree was moved, not copied
    assert sh(wt2, "symbolic-ref", "--short", "HEAD") == "agentwaves-groups/r1/web"
    assert sh(wt2, "rev-parse", "HEAD") == base
    assert sh(wt2, "status", "--porcelain") == "?? .env"  # the copy; pool.commit leaves it out
    assert (wt2 / "README.md").read_text() == "# demo\n"
    assert (wt2 / "src" / "app.py").read_text() == "print('wave 2')\n"
    assert not (wt2 / "scratch.txt").exists() and not (wt2 / "committed.txt").exists()
    assert (wt2 / "build" / "cache.o").read_text() == "cached\n"
    assert (wt2 / ".env").read_text() == "SECRET=1\n"
    assert count.read_text() == "set\n"  # setup ran once: only for the new worktree
    assert branch_exists(repo, group_branch("r1", "api"))  # earlier group work stays on its branch
    assert [w.branch for w in list_worktrees(repo)][1:] == ["agentwaves-groups/r1/web"]
    pool.close()


def test_acquire_same_name_twice_fails_and_reuse_off_removes(repo: Path, tmp_path: Path) -> None:
    pool = WorktreePool(repo, tmp_path / "wt", reuse=False)
    wt = pool.acquire("a", group_branch("r1", "a"), "main")
    with pytest.raises(GitError, match="already in use"):
        pool.acquire("a", group_branch("r1", "a2"), "main")
    pool.release(wt)
    assert not wt.exists()
    assert len(list_worktrees(repo)) == 1


def test_setup_failure_names_the_command_and_cleans_up(repo: Path, tmp_path: Path) -> None:
    pool = WorktreePool(repo, tmp_path / "wt", setup="echo starting; echo 'npm ERR! boom' >&2; exit 3")
    with pytest.raises(SetupError) as exc:
        pool.acquire("api", group_branch("r1", "api"), "main")
    msg = str(exc.value)
    assert "exit 3" in msg and "npm ERR! boom" in msg and "setup command" in msg and "\n" not in msg
    assert not (tmp_path / "wt" / "api").exists()
    assert len(list_worktrees(repo)) == 1
    pool.close()


def _running(needle: str) -> bool:
    for proc in Path("/proc").iterdir():
        try:
            if needle in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                return True
        except OSError:
            continue
    return False


def test_setup_timeout_kills_the_command_and_what_it_started(repo: Path, tmp_path: Path) -> None:
    pool = WorktreePool(repo, tmp_path / "wt", setup="sleep 31.4159 & sleep 31.4159", setup_timeout=0.5)
    with pytest.raises(SetupError) as exc:
        pool.acquire("api", group_branch("r1", "api"), "main")
    assert "did not finish in 0.5 s" in str(exc.value) and "setup_timeout" in str(exc.value)
    assert not _running("sleep 31.4159")  # the background one too
    assert not (tmp_path / "wt" / "api").exists()
    pool.close()


def test_refuses_branches_outside_the_namespace(repo: Path, tmp_path: Path) -> None:
    before = user_view(repo)
    pool = WorktreePool(repo, tmp_path / "wt")
    with pytest.raises(GitError, match="refusing"):
        pool.acquire("x", "main", "HEAD")
    with pytest.raises(GitError, match="refusing"):
        add_worktree(repo, tmp_path / "i", "feature", "HEAD")
    with pytest.raises(GitError, match="main worktree"):
        remove_worktree(repo, repo)
    assert user_view(repo) == before


def test_worktree_left_by_a_killed_process_is_recovered(repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "wt"
    first = WorktreePool(repo, root)
    wt = first.acquire("api", group_branch("r1", "api"), "main")
    (wt / "half-done.txt").write_text("x\n")
    (wt / "README.md").write_text("dirty\n")
    del first  # the process dies: no release, no close

    second = WorktreePool(repo, root)
    again = second.acquire("api", group_branch("r2", "api"), "main")
    assert again == wt
    assert sh(again, "status", "--porcelain") == ""
    assert sh(again, "symbolic-ref", "--short", "HEAD") == "agentwaves-groups/r2/api"

    # git forgot it (admin dir pruned) but the directory is still there: cleared and recreated
    second.release(again)
    shutil.rmtree(repo / ".git" / "worktrees" / "api")
    third = WorktreePool(repo, root)
    fresh = third.acquire("api", group_branch("r3", "api"), "main")
    assert sh(fresh, "symbolic-ref", "--short", "HEAD") == "agentwaves-groups/r3/api"

    # the directory was deleted by hand: git still lists it; prune and recreate
    third.release(fresh)
    shutil.rmtree(fresh)
    fourth = WorktreePool(repo, root)
    fresh = fourth.acquire("api", group_branch("r4", "api"), "main")
    assert (fresh / "README.md").read_text() == "# demo\n"
    fourth.close()

    (root / "mine").mkdir(parents=True)
    (root / "mine" / "notes.txt").write_text("user data\n")
    with pytest.raises(GitError, match="not a worktree"):
        WorktreePool(repo, root).acquire("mine", group_branch("r5", "mine"), "main")
    assert (root / "mine" / "notes.txt").exists()


def test_threads_acquire_commit_and_release_concurrently(repo: Path, tmp_path: Path) -> None:
    pool = WorktreePool(repo, tmp_path / "wt", copy_files=[".env", "node_modules/"])
    base = head_sha(repo)
    errors: list[BaseException] = []
    results: dict[str, str] = {}
    lock = threading.Lock()

    def work(wave: int, i: int) -> None:
        try:
            name = f"w{wave}-g{i}"
            wt = pool.acquire(name, group_branch("r1", name), base)
            assert sh(wt, "status", "--porcelain") == "?? .env"
            (wt / f"out{i}").mkdir(exist_ok=True)
            (wt / f"out{i}" / f"{name}.txt").write_text(name)
            sha = pool.commit(wt, name)
            assert sha is not None
            with lock:
                results[name] = sha
            pool.release(wt)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    for wave in (1, 2, 3):
        threads = [threading.Thread(target=work, args=(wave, i)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
    assert len(results) == 18
    for name, sha in results.items():
        files = sh(repo, "diff", "--name-only", base, sha).splitlines()
        assert files == [f"out{name[-1]}/{name}.txt"]
    assert len(list_worktrees(repo)) == 1 + 6  # reused, not recreated
    pool.close()
    assert len(list_worktrees(repo)) == 1
    assert not (tmp_path / "wt").exists()


def test_integration_worktree(repo: Path, tmp_path: Path) -> None:
    before = user_view(repo)
    base = head_sha(repo)
    branch = integration_branch("r1")
    path = add_worktree(repo, tmp_path / "integration", branch, base)
    assert sh(path, "symbolic-ref", "--short", "HEAD") == branch
    assert (path / "src" / "app.py").exists()
    (path / "wave1.txt").write_text("1\n")
    wave1 = commit_all(path, "wave 1")
    assert add_worktree(repo, path, branch, base) == path  # reused as is
    assert (path / "wave1.txt").exists()
    with pytest.raises(GitError, match="not agentwaves/other"):
        add_worktree(repo, path, integration_branch("other"), base)

    remove_worktree(repo, path)
    assert not path.exists()
    resumed = add_worktree(repo, path, branch, base)  # the branch exists: keep its commits
    assert sh(resumed, "rev-parse", "HEAD") == wave1
    assert sh(resumed, "status", "--porcelain") == ""
    infos = list_worktrees(repo)
    assert infos[0].path == repo.resolve() and infos[0].branch == "main"
    assert infos[1].path == path.resolve() and infos[1].branch == branch and infos[1].head == wave1
    sh(resumed, "checkout", "-q", "--detach")
    assert list_worktrees(repo)[1].branch is None
    shutil.rmtree(resumed)
    assert list_worktrees(repo)[1].prunable
    prune(repo, [resumed])
    assert len(list_worktrees(repo)) == 1
    remove_worktree(repo, path)  # already gone: no error
    assert user_view(repo) == before


def _tree_on_disk(wt: Path) -> dict[str, str]:
    """Every file git tracks or could add (ignored ones and the .env copy aside), with its text."""
    names = sh(wt, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    return {n: (wt / n).read_text() for n in names if n and n != ".env" and (wt / n).exists()}


def _tree_of(repo: Path, rev: str) -> dict[str, str]:
    names = sh(repo, "ls-tree", "-r", "-z", "--name-only", rev).split("\0")
    return {n: sh(repo, "show", f"{rev}:{n}") + "\n" for n in names if n}


def test_clean_release_switches_only_what_differs(repo: Path, tmp_path: Path) -> None:
    """A worktree released with ``clean_head`` is moved to the next base by a two-tree read-tree: its
    files then equal the new base exactly (changed, added and deleted files), ignored files and the copy
    are kept, and the branch is the new group's."""
    pool = WorktreePool(repo, tmp_path / "wt", copy_files=[".env"])
    wt = pool.acquire("w1-api", group_branch("r1", "api"), "main")
    (wt / "src" / "app.py").write_text("print('api')\n")
    (wt / "src" / "api.py").write_text("API = 1\n")
    (wt / "build").mkdir()
    (wt / "build" / "cache.o").write_text("cached\n")
    sha = pool.commit(wt, "api work", paths=["src/app.py", "src/api.py"])
    assert sha is not None and sh(wt, "status", "--porcelain") == "?? .env"
    pool.release(wt, clean_head=sha)
    (repo / "README.md").unlink()
    (repo / "docs.md").write_text("docs\n")
    sh(repo, "add", "-A", "README.md", "docs.md")
    sh(repo, "commit", "-qm", "wave 1 landed")
    base = head_sha(repo)

    wt2 = pool.acquire("w2-web", group_branch("r1", "web"), base)
    assert sh(wt2, "symbolic-ref", "--short", "HEAD") == "agentwaves-groups/r1/web"
    assert sh(wt2, "rev-parse", "HEAD") == base
    assert _tree_on_disk(wt2) == _tree_of(repo, base)  # api.py gone, README gone, docs.md there
    assert sh(wt2, "status", "--porcelain") == "?? .env"
    assert (wt2 / "build" / "cache.o").read_text() == "cached\n"
    assert (wt2 / ".env").read_text() == "SECRET=1\n"
    pool.close()


def test_a_wrong_clean_head_falls_back_to_reset_and_clean(repo: Path, tmp_path: Path) -> None:
    """If a file the switch must change was edited after the releaser's commit, read-tree refuses and the
    pool resets and cleans the worktree as for any other reuse. (An edit elsewhere would be carried over:
    ``clean_head`` must be true, which the executor guarantees by scanning after commands and failures.)"""
    pool = WorktreePool(repo, tmp_path / "wt")
    wt = pool.acquire("w1-api", group_branch("r1", "api"), "main")
    sha = pool.commit(wt, "nothing", allow_empty=True)
    assert sha is not None
    (wt / "src" / "app.py").write_text("stale edit\n")
    (wt / "stray.txt").write_text("stray\n")
    pool.release(wt, clean_head=sha)
    (repo / "src" / "app.py").write_text("print('landed')\n")
    sh(repo, "commit", "-qam", "landed")
    base = head_sha(repo)

    wt2 = pool.acquire("w2-web", group_branch("r1", "web"), base)
    assert sh(wt2, "rev-parse", "HEAD") == base
    assert (wt2 / "src" / "app.py").read_text() == "print('landed')\n"
    assert not (wt2 / "stray.txt").exists()
    assert sh(wt2, "status", "--porcelain") == ""
    pool.close()
