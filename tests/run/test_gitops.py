"""The git command layer: errors, repository checks, commits, diffs and guarded ref updates."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agentwaves.errors import AgentwavesError, UsageError
from agentwaves.git.merge import commit_tree, tree_of
from agentwaves.git.ops import (
    FileChange,
    GitError,
    branch_exists,
    changed_paths,
    commit_all,
    current_branch,
    delete_branch,
    diff_stat,
    ensure_state_dir,
    find_repo_root,
    git,
    head_sha,
    identity_args,
    is_dirty,
    update_ref,
)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_git_returns_stdout_and_raises_one_line_errors(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    with pytest.raises(GitError) as exc:
        git(repo, "rev-parse", "--verify", "no-such-branch")
    msg = str(exc.value)
    assert isinstance(exc.value, AgentwavesError)
    assert "\n" not in msg
    assert msg.startswith("git rev-parse --verify no-such-branch failed (exit 128)")
    assert "fatal:" in msg
    assert git(repo, "rev-parse", "--verify", "no-such-branch", check=False) == ""


def test_git_passes_input_and_env(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    oid = git(repo, "hash-object", "--stdin", input="hello\n")
    assert len(oid) == 40
    assert git(repo, "var", "GIT_AUTHOR_IDENT", env={"GIT_AUTHOR_NAME": "Someone"}).startswith("Someone ")


def test_git_in_missing_directory_is_a_git_error(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="no such directory"):
        git(tmp_path / "nope", "status")


def test_find_repo_root(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    repo = make_repo({"a/b/c.txt": "x\n"})
    assert find_repo_root(repo / "a" / "b") == repo.resolve()
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UsageError, match=r"^not a git repository: "):
        find_repo_root(plain)
    with pytest.raises(UsageError, match="not a git repository"):
        find_repo_root(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    sh(empty, "init", "-q")
    with pytest.raises(UsageError, match="no commits yet: make a first commit"):
        find_repo_root(empty)
    bare = tmp_path / "bare.git"
    sh(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    with pytest.raises(UsageError, match=r"^not a git repository: "):
        find_repo_root(bare)  # it has commits, but no working tree
    spaced = make_repo({"x.txt": "x\n"}, name="with space\nand a newline")
    assert find_repo_root(spaced) == spaced.resolve()


def test_head_sha_and_current_branch(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    sha = head_sha(repo)
    assert sha == sh(repo, "rev-parse", "HEAD")
    assert head_sha(repo, "main") == sha
    assert current_branch(repo) == "main"
    sh(repo, "checkout", "-q", "--detach")
    assert current_branch(repo) is None
    with pytest.raises(GitError):
        head_sha(repo, "nope")


def test_a_commit_known_in_one_repository_is_not_known_in_another_made_at_its_path(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """head_sha answers a full id it has seen without git; never for a repository made again at the same
    path (whose objects are new), nor for another repository or one of a worktree's siblings' ids."""
    repo = make_repo({"a.txt": "one\n"})
    (repo / "a.txt").write_text("two\n")
    sha = commit_all(repo, "second")
    assert sha is not None and head_sha(repo, sha) == sha
    tree = sh(repo, "rev-parse", f"{sha}^{{tree}}")
    sh(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"), "HEAD~1")
    assert head_sha(tmp_path / "wt", sha) == sha  # a worktree shares its repository's objects
    other = make_repo({"a.txt": "one\n"}, name="other")
    with pytest.raises(GitError):
        head_sha(other, sha)
    shutil.rmtree(repo)
    shutil.rmtree(tmp_path / "wt")
    make_repo({"b.txt": "new\n"})  # the same path, new objects
    with pytest.raises(GitError):
        head_sha(repo, sha)
    assert tree_of(other) == sh(other, "rev-parse", "HEAD^{tree}") != tree


def test_tree_of_a_commit_made_here_is_its_tree(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "a\n"})
    base = head_sha(repo)
    tree = sh(repo, "rev-parse", "HEAD^{tree}")
    made = commit_tree(repo, tree, [base], "again")
    assert tree_of(repo, made) == tree == sh(repo, "rev-parse", f"{made}^{{tree}}")
    assert head_sha(repo, made) == made


def test_is_dirty_and_state_dir(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "a\n"})
    assert not is_dirty(repo)
    state = ensure_state_dir(repo)
    assert state == repo / ".agentwaves"
    assert (state / ".gitignore").read_text() == "*\n"
    (state / "run.json").write_text("{}")
    assert ensure_state_dir(repo) == state
    assert sh(repo, "status", "--porcelain") == ""
    assert not is_dirty(repo)
    (repo / "new.txt").write_text("n\n")
    assert is_dirty(repo)
    (repo / "new.txt").unlink()
    (repo / "a.txt").write_text("changed\n")
    assert is_dirty(repo)
    sh(repo, "checkout", "--", "a.txt")
    sh(repo, "mv", "a.txt", "b.txt")
    assert is_dirty(repo)


def test_commit_all_stages_everything_and_skips_empty(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"keep.txt": "k\n", "gone.txt": "g\n"})
    assert commit_all(repo, "nothing") is None
    (repo / "gone.txt").unlink()
    (repo / "dir").mkdir()
    (repo / "dir" / "new.txt").write_text("n\n")
    (repo / "keep.txt").write_text("k2\n")
    sha = commit_all(repo, "subject\n\nbody line\n")
    assert sha == head_sha(repo)
    assert sh(repo, "log", "-1", "--format=%B") == "subject\n\nbody line"
    assert sh(repo, "ls-files") == "dir/new.txt\nkeep.txt"
    assert sh(repo, "status", "--porcelain") == ""
    empty = commit_all(repo, "empty", allow_empty=True)
    assert empty is not None and empty != sha
    assert sh(repo, "rev-parse", "HEAD^") == sha


def test_commit_all_with_known_paths_stages_only_them(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({".gitignore": "*.log\n"})
    (repo / "a*.py").write_text("star\n")  # a literal name, not a glob
    (repo / "b.py").write_text("b\n")
    (repo / "other.py").write_text("not said\n")
    commit_all(repo, "known", paths=["a*.py", "b.py"])
    assert sh(repo, "ls-files") == ".gitignore\na*.py\nb.py"
    # git refuses an ignored path: everything is staged instead, the ignored file still left out
    (repo / "debug.log").write_text("log\n")
    commit_all(repo, "with an ignored file", paths=["debug.log", "b.py"])
    assert "other.py" in sh(repo, "ls-files") and "debug.log" not in sh(repo, "ls-files")
    assert sh(repo, "status", "--porcelain") == ""


def test_commit_all_excludes_paths(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    (repo / ".env").write_text("SECRET=1\n")
    (repo / "code.py").write_text("x = 1\n")
    commit_all(repo, "work", exclude=[".env"])
    assert sh(repo, "ls-files") == "README.md\ncode.py"
    assert commit_all(repo, "again", exclude=[".env"]) is None


def test_identity_is_asked_again_when_a_config_file_changes(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo = make_repo()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert "user." not in (repo / ".git" / "config").read_text()
    fallback = ["-c", "user.name=agentwaves", "-c", "user.email=agentwaves@localhost"]
    assert identity_args(repo) == fallback
    assert identity_args(repo) == fallback  # cached
    (home / ".gitconfig").write_text("[user]\n\tname = Global\n")
    assert identity_args(repo) == ["-c", "user.email=agentwaves@localhost"]
    sh(repo, "config", "user.email", "local@example.com")
    assert identity_args(repo) == []
    (home / ".gitconfig").unlink()
    assert identity_args(repo) == ["-c", "user.name=agentwaves"]


def test_commit_all_falls_back_to_a_fixed_identity(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo()
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    (repo / "x.txt").write_text("x\n")
    commit_all(repo, "anon")
    assert sh(repo, "log", "-1", "--format=%an <%ae>") == "agentwaves <agentwaves@localhost>"
    sh(repo, "config", "user.name", "Real Person")
    sh(repo, "config", "user.email", "real@example.com")
    (repo / "y.txt").write_text("y\n")
    commit_all(repo, "named")
    assert sh(repo, "log", "-1", "--format=%an <%ae>") == "Real Person <real@example.com>"


def test_diff_stat_and_changed_paths(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "1\n2\n3\n", "b.txt": "b\n", "bin.dat": "x"})
    base = head_sha(repo)
    (repo / "a.txt").write_text("1\nTWO\n3\nfour\n")
    (repo / "b.txt").unlink()
    (repo / "bin.dat").write_bytes(b"\x00\x01\x02binary")
    (repo / "sub").mkdir()
    (repo / "sub" / "c d.txt").write_text("c\n")
    head = commit_all(repo, "changes")
    assert head is not None
    assert diff_stat(repo, base, head) == [
        FileChange("a.txt", "M", 2, 1),
        FileChange("b.txt", "D", 0, 1),
        FileChange("bin.dat", "M", None, None),
        FileChange("sub/c d.txt", "A", 1, 0),
    ]
    assert changed_paths(repo, base, head) == {"a.txt", "b.txt", "bin.dat", "sub/c d.txt"}
    assert diff_stat(repo, head, head) == []


def test_diff_stat_reports_no_renames(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"old.txt": "same content here\n" * 20})
    base = head_sha(repo)
    sh(repo, "mv", "old.txt", "new.txt")
    head = commit_all(repo, "rename")
    assert head is not None
    statuses = {c.path: c.status for c in diff_stat(repo, base, head)}
    assert statuses == {"new.txt": "A", "old.txt": "D"}


def test_update_ref_checks_the_old_value(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    first = head_sha(repo)
    (repo / "x").write_text("x\n")
    second = commit_all(repo, "second")
    assert second is not None
    ref = "refs/heads/agentwaves/run1"
    update_ref(repo, ref, first, None)
    assert head_sha(repo, ref) == first
    with pytest.raises(GitError, match="update-ref"):
        update_ref(repo, ref, second, None)  # must not exist yet
    with pytest.raises(GitError):
        update_ref(repo, ref, first, second)  # wrong expected value
    update_ref(repo, "agentwaves/run1", second, first)  # short names work too
    assert head_sha(repo, ref) == second


def test_only_agentwaves_refs_are_written(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    sha = head_sha(repo)
    for ref in ("refs/heads/main", "main", "refs/heads/feature", "refs/tags/agentwaves/x"):
        with pytest.raises(GitError, match="refusing to modify"):
            update_ref(repo, ref, sha, sha)
    with pytest.raises(GitError, match="refusing to modify"):
        delete_branch(repo, "main", force=True)
    assert head_sha(repo, "main") == sha


def test_branch_exists_and_delete_branch(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    name = "agentwaves-groups/r1/api"
    assert not branch_exists(repo, name)
    update_ref(repo, name, "HEAD", None)
    assert branch_exists(repo, name)
    assert delete_branch(repo, name)
    assert not branch_exists(repo, name)
    assert not delete_branch(repo, name)
    sh(repo, "branch", "agentwaves-groups/r1/web")
    sh(repo, "checkout", "-q", "agentwaves-groups/r1/web")
    (repo / "w").write_text("w\n")
    commit_all(repo, "unmerged")
    sh(repo, "checkout", "-q", "main")
    with pytest.raises(GitError, match="branch -d"):
        delete_branch(repo, "agentwaves-groups/r1/web")
    assert delete_branch(repo, "agentwaves-groups/r1/web", force=True)


def test_concurrent_ref_updates_only_one_wins(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    base = head_sha(repo)
    commits = [git(repo, "commit-tree", "HEAD^{tree}", "-p", base, "-m", f"c{i}") for i in range(6)]
    ref = "agentwaves/race"
    update_ref(repo, ref, base, None)
    wins: list[str] = []
    errors: list[Exception] = []

    def attempt(c: str) -> None:
        try:
            update_ref(repo, ref, c, base)
            wins.append(c)
        except GitError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(c,)) for c in commits]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(errors) == 5
    assert head_sha(repo, ref) == wins[0]


def test_commit_all_cleans_the_message_like_git_commit(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    (repo / "x").write_text("x\n")
    commit_all(repo, "\n\nsubject   \n\n\n\nbody  \n\n")
    assert sh(repo, "log", "-1", "--format=%B") == "subject\n\nbody"
    assert sh(repo, "reflog", "-1", "--format=%gs", "main") == "commit: subject"


def test_commit_all_finishes_an_in_progress_merge(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"f.txt": "base\n"})
    sh(repo, "checkout", "-q", "-b", "other")
    (repo / "f.txt").write_text("other\n")
    commit_all(repo, "other")
    sh(repo, "checkout", "-q", "main")
    (repo / "f.txt").write_text("main\n")
    commit_all(repo, "main")
    assert subprocess.run(["git", "merge", "-q", "other"], cwd=repo, capture_output=True).returncode == 1
    (repo / "f.txt").write_text("resolved\n")
    sha = commit_all(repo, "merge other")
    assert sha is not None
    assert len(sh(repo, "rev-list", "--parents", "-n1", "HEAD").split()) == 3
    assert not (repo / ".git" / "MERGE_HEAD").exists()


def test_commit_all_makes_the_first_commit(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    sh(repo, "init", "-q", "-b", "main")
    assert commit_all(repo, "nothing yet") is None
    (repo / "a.txt").write_text("a\n")
    sha = commit_all(repo, "first")
    assert sha == head_sha(repo) and sh(repo, "rev-list", "--count", "HEAD") == "1"


def test_git_sees_the_environment_as_it_is_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """git's environment is filtered once per version of ours, never an older one: a variable set or
    removed since the last git call is seen, and a secret never is."""
    from agentwaves.git.harden import git_env

    monkeypatch.setenv("AW_PLAIN_VALUE", "1")
    monkeypatch.setenv("AW_SERVICE_TOKEN", "canary")
    assert git_env()["AW_PLAIN_VALUE"] == "1" and "AW_SERVICE_TOKEN" not in git_env()
    monkeypatch.setenv("AW_PLAIN_VALUE", "2")
    assert git_env()["AW_PLAIN_VALUE"] == "2"
    monkeypatch.delenv("AW_PLAIN_VALUE")
    assert "AW_PLAIN_VALUE" not in git_env()
    assert git_env({"EXTRA": "x"})["EXTRA"] == "x" and "EXTRA" not in git_env()
