"""Merging without a working tree: nothing from earlier waves is lost, each group's changes land exactly."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from agentwaves.git.merge import (
    accumulate,
    checkout_tree,
    commit_tree,
    commit_wave,
    conflict_markers_left,
    find_wave_commit,
    merge_into,
    merge_wave,
    record_resolution,
    tree_of,
    wave_message,
    write_tree_from_worktree,
)
from agentwaves.git.ops import GitError, changed_paths, git, head_sha, update_ref
from agentwaves.git.pool import WorktreePool
from agentwaves.git.worktrees import add_worktree, group_branch, integration_branch

Change = bytes | str | tuple[str, bytes] | None


def make_commit(repo: Path, parent: str, changes: dict[str, Change], message: str = "change") -> str:
    """A commit on ``parent`` with ``changes`` (None deletes; (mode, bytes) sets a mode); no worktree."""
    fd, name = tempfile.mkstemp()
    os.close(fd)
    os.unlink(name)
    env = {"GIT_INDEX_FILE": name}
    try:
        git(repo, "read-tree", parent, env=env)
        for path, value in changes.items():
            if value is None:
                git(repo, "update-index", "--force-remove", "--", path, env=env)
                continue
            mode, data = value if isinstance(value, tuple) else ("100644", value)
            raw = data.encode() if isinstance(data, str) else data
            proc = subprocess.run(
                ["git", "hash-object", "-w", "--stdin"], cwd=repo, input=raw, capture_output=True, check=True
            )
            oid = proc.stdout.decode().strip()
            git(repo, "update-index", "--add", "--cacheinfo", f"{mode},{oid},{path}", env=env)
        tree = git(repo, "write-tree", env=env)
    finally:
        Path(name).unlink(missing_ok=True)
    return commit_tree(repo, tree, [parent], message)


def tree_files(repo: Path, rev: str) -> dict[str, tuple[str, bytes]]:
    """path -> (mode, content) of every file in ``rev``."""
    out = git(repo, "ls-tree", "-r", "-z", rev)
    files: dict[str, tuple[str, bytes]] = {}
    for rec in out.split("\0"):
        if not rec:
            continue
        meta, path = rec.split("\t", 1)
        mode, _, oid = meta.split()
        blob = subprocess.run(["git", "cat-file", "blob", oid], cwd=repo, capture_output=True, check=True)
        files[path] = (mode, blob.stdout)
    return files


def contents(repo: Path, rev: str) -> dict[str, bytes]:
    return {p: data for p, (_, data) in tree_files(repo, rev).items()}


def user_view(repo: Path) -> tuple[str, str, str, str]:
    """What the user sees of their checkout: HEAD, branch, status and the index file's bytes."""
    index = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
    return (
        git(repo, "rev-parse", "HEAD"),
        git(repo, "symbolic-ref", "HEAD"),
        git(repo, "status", "--porcelain", "--ignored"),
        index,
    )


def test_merge_into_clean_and_bad_input(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.txt": "a\n"})
    base = head_sha(repo)
    one = make_commit(repo, base, {"b.txt": "b\n"})
    two = make_commit(repo, base, {"c.txt": "c\n"})
    step = merge_into(repo, one, two)
    assert step.clean and step.conflicts == []
    assert set(contents(repo, step.tree)) == {"a.txt", "b.txt", "c.txt"}
    with pytest.raises(GitError, match="merge-tree"):
        merge_into(repo, one, "no-such-branch")


def test_wave_with_deletion_new_dir_binary_and_mode_change(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"doomed.txt": "bye\n", "run.sh": "echo hi\n", "img.bin": "old"})
    before = user_view(repo)
    base = head_sha(repo)
    binary = bytes(range(256)) * 4
    branches = [
        ("delete", make_commit(repo, base, {"doomed.txt": None})),
        ("newdir", make_commit(repo, base, {"deep/new/dir/file.py": "x = 1\n"})),
        ("binary", make_commit(repo, base, {"img.bin": binary})),
        ("mode", make_commit(repo, base, {"run.sh": ("100755", b"echo hi\n")})),
    ]
    result = merge_wave(repo, base, branches)
    assert result.merged == ["delete", "newdir", "binary", "mode"]
    assert result.conflicts == {} and result.tree is not None
    files = tree_files(repo, result.tree)
    assert "doomed.txt" not in files
    assert files["deep/new/dir/file.py"] == ("100644", b"x = 1\n")
    assert files["img.bin"] == ("100644", binary)
    assert files["run.sh"] == ("100755", b"echo hi\n")
    assert set(files) == {"run.sh", "img.bin", "deep/new/dir/file.py"}
    assert user_view(repo) == before


def test_two_groups_edit_different_parts_of_one_file(make_repo: Callable[..., Path]) -> None:
    lines = [f"line {i}\n" for i in range(20)]
    repo = make_repo({"shared.txt": "".join(lines)})
    base = head_sha(repo)
    top = lines.copy()
    top[1] = "TOP\n"
    bottom = lines.copy()
    bottom[18] = "BOTTOM\n"
    result = merge_wave(
        repo,
        base,
        [
            ("top", make_commit(repo, base, {"shared.txt": "".join(top)})),
            ("bottom", make_commit(repo, base, {"shared.txt": "".join(bottom)})),
        ],
    )
    assert result.merged == ["top", "bottom"] and not result.conflicts
    assert result.tree is not None
    merged = contents(repo, result.tree)["shared.txt"].decode()
    assert "TOP\n" in merged and "BOTTOM\n" in merged and "<<<<<<<" not in merged


def test_same_line_conflict_is_reported_and_the_rest_merged(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"config.py": "PORT = 1\n"})
    base = head_sha(repo)
    branches = [
        ("a", make_commit(repo, base, {"config.py": "PORT = 2\n"})),
        ("b", make_commit(repo, base, {"config.py": "PORT = 3\n", "b_only.txt": "b\n"})),
        ("c", make_commit(repo, base, {"c.txt": "c\n"})),
    ]
    result = merge_wave(repo, base, branches)
    assert result.merged == ["a", "c"]
    assert result.conflicts == {"b": ["config.py"]}
    assert result.tree is not None
    files = contents(repo, result.tree)
    assert files["config.py"] == b"PORT = 2\n"
    assert "b_only.txt" not in files and files["c.txt"] == b"c\n"
    marked = contents(repo, result.conflicted_tree["b"])["config.py"].decode()
    assert "<<<<<<<" in marked and "PORT = 2" in marked and "PORT = 3" in marked


def test_nothing_merged_gives_no_tree(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"f": "1\n"})
    base = head_sha(repo)
    assert merge_wave(repo, base, []).tree is None
    first = make_commit(repo, base, {"f": "2\n"})
    wave1 = commit_tree(repo, tree_of(repo, first), [base], "wave 1")
    result = merge_wave(repo, wave1, [("x", make_commit(repo, base, {"f": "3\n"}))])
    assert result.tree is None and result.merged == [] and result.head == wave1


def test_group_without_changes_merges_as_a_no_op(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    base = head_sha(repo)
    result = merge_wave(repo, base, [("idle", base), ("busy", make_commit(repo, base, {"n": "n\n"}))])
    assert result.merged == ["idle", "busy"]
    assert result.tree is not None and set(contents(repo, result.tree)) == {"README.md", "n"}


def test_stale_branch_does_not_delete_earlier_wave_files(make_repo: Callable[..., Path]) -> None:
    """A branch forked before wave 1 merges in wave 2 without undoing wave 1 (get-shit-done #2075)."""
    repo = make_repo({"README.md": "readme\n"})
    base = head_sha(repo)
    wave1 = make_commit(repo, base, {"src/feature.py": "feature\n", "README.md": "readme\nmore\n"})
    stale = make_commit(repo, base, {"docs/guide.md": "guide\n"})
    result = merge_wave(repo, wave1, [("docs", stale)])
    assert result.tree is not None
    assert contents(repo, result.tree) == {
        "README.md": b"readme\nmore\n",
        "src/feature.py": b"feature\n",
        "docs/guide.md": b"guide\n",
    }


def test_fork_point_merges_only_what_a_stacked_branch_changed(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    base = head_sha(repo)
    a = make_commit(repo, base, {"a.txt": "a\n"})
    b = make_commit(repo, a, {"b.txt": "b\n"})
    plain = merge_wave(repo, base, [("b", b)])
    assert plain.tree is not None and "a.txt" in contents(repo, plain.tree)
    stacked = merge_wave(repo, base, [("b", b)], forks={"b": a})
    assert stacked.tree is not None
    assert set(contents(repo, stacked.tree)) == {"README.md", "b.txt"}
    both = merge_wave(repo, base, [("a", a), ("b", b)], forks={"b": a})
    assert both.tree is not None and set(contents(repo, both.tree)) == {"README.md", "a.txt", "b.txt"}


def test_resolving_a_conflict_in_a_scratch_worktree(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    repo = make_repo({"config.py": "PORT = 1\n", ".gitignore": "node_modules/\n"})
    before = user_view(repo)
    base = head_sha(repo)
    ours = make_commit(repo, base, {"config.py": "PORT = 2\n"})
    theirs = make_commit(repo, base, {"config.py": "PORT = 3\n", "extra.txt": "e\n"})
    current, step = accumulate(repo, base, ours)
    assert step.clean and current != base
    same, step = accumulate(repo, current, theirs)
    assert same == current and step.conflicts == ["config.py"]

    pool = WorktreePool(repo, tmp_path / "wt")
    scratch = pool.acquire("resolve", group_branch("r1", "resolve"), current)
    (scratch / "node_modules").mkdir()
    (scratch / "node_modules" / "dep.js").write_text("dep\n")
    (scratch / "junk.txt").write_text("junk\n")
    checkout_tree(scratch, step.tree)
    assert not (scratch / "junk.txt").exists()
    assert (scratch / "node_modules" / "dep.js").exists()
    assert (scratch / "extra.txt").read_text() == "e\n"
    assert conflict_markers_left(scratch, step.conflicts) == ["config.py"]
    (scratch / "config.py").write_text("PORT = 23\n")
    (scratch / "resolver_note.md").write_text("added by the resolver\n")
    assert conflict_markers_left(scratch, step.conflicts) == []
    status_before = git(scratch, "status", "--porcelain")
    tree = write_tree_from_worktree(scratch)
    assert git(scratch, "status", "--porcelain") == status_before
    resolved = record_resolution(repo, current, theirs, tree)
    assert git(repo, "rev-list", "--parents", "-n1", resolved).split()[1:] == [current, theirs]
    files = contents(repo, resolved)
    assert files["config.py"] == b"PORT = 23\n" and files["extra.txt"] == b"e\n"
    assert files["resolver_note.md"] == b"added by the resolver\n"
    assert "node_modules/dep.js" not in files
    pool.release(scratch)
    pool.close()
    assert user_view(repo) == before


def test_commit_wave_is_linear_guarded_and_findable(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    repo = make_repo({"a.txt": "a\n"})
    before = user_view(repo)
    base = head_sha(repo)
    ref = integration_branch("run7")
    integ = add_worktree(repo, tmp_path / "integration", ref, base)
    g1 = make_commit(repo, base, {"one.txt": "1\n"})
    w1 = merge_wave(repo, base, [("g1", g1)])
    assert w1.tree is not None
    c1 = commit_wave(repo, base, w1.tree, wave_message("run7", 1, "wave 1"), ref, worktree=integ)
    assert head_sha(repo, ref) == c1
    assert git(repo, "rev-list", "--parents", "-n1", c1).split()[1:] == [base]
    assert (integ / "one.txt").read_text() == "1\n" and git(integ, "status", "--porcelain") == ""
    body = git(repo, "log", "-1", "--format=%B", c1)
    assert "Agentwaves-Run: run7" in body and "Agentwaves-Wave: 1" in body
    # an empty wave still gets its commit
    c2 = commit_wave(repo, c1, tree_of(repo, c1), wave_message("run7", 2, "wave 2 (nothing)"), ref)
    assert tree_of(repo, c2) == tree_of(repo, c1) and head_sha(repo, ref) == c2
    # a stale parent fails loudly instead of rewriting history
    with pytest.raises(GitError, match="update-ref"):
        commit_wave(repo, c1, w1.tree, wave_message("run7", 2, "again"), ref)
    assert head_sha(repo, ref) == c2
    assert find_wave_commit(repo, ref, "run7", 1) == c1
    assert find_wave_commit(repo, ref, "run7", 2) == c2
    assert find_wave_commit(repo, ref, "run7", 3) is None
    assert find_wave_commit(repo, ref, "run8", 1) is None
    assert find_wave_commit(repo, "agentwaves/missing", "run7", 1) is None
    # a commit that only mentions the trailers in its body is not a wave commit
    fake = commit_tree(repo, tree_of(repo, c2), [c2], "talks about Agentwaves-Run: run7 Agentwaves-Wave: 9")
    update_ref(repo, ref, fake, c2)
    assert find_wave_commit(repo, ref, "run7", 9) is None
    with pytest.raises(GitError, match="refusing"):
        commit_wave(repo, base, w1.tree, "x", "refs/heads/main")
    assert user_view(repo) == before


def _random_bytes(rng: random.Random) -> bytes:
    if rng.random() < 0.15:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    return "".join(f"{rng.random():.6f}\n" for _ in range(rng.randrange(1, 6))).encode()


@pytest.mark.parametrize("seed", range(4))
def test_property_waves_never_lose_work(make_repo: Callable[..., Path], tmp_path: Path, seed: int) -> None:
    """3 waves x 3 groups of random disjoint edits: the result is always base + every group's changes."""
    rng = random.Random(seed)
    initial = {f"d{rng.randrange(3)}/f{i}.txt": f"file {i}\n" for i in range(12)}
    repo = make_repo(initial)
    before = user_view(repo)
    model = {p: c.encode() for p, c in initial.items()}
    assert contents(repo, "HEAD") == model
    run_id = f"prop{seed}"
    ref = integration_branch(run_id)
    head = head_sha(repo)
    update_ref(repo, ref, head, None)
    pool = WorktreePool(repo, tmp_path / "pool")
    for wave in range(1, 4):
        paths = sorted(model)
        rng.shuffle(paths)
        share = len(paths) // 3
        branches: list[tuple[str, str]] = []
        expected_changes: dict[str, set[str]] = {}
        for g in range(3):
            mine = paths[g * share : (g + 1) * share]
            edits: dict[str, bytes | None] = {}
            for p in mine:
                roll = rng.random()
                if roll < 0.3:
                    edits[p] = None
                elif roll < 0.7:
                    edits[p] = _random_bytes(rng)
            for k in range(rng.randrange(0, 3)):
                where = rng.choice(["", f"new{wave}{g}/", f"d{rng.randrange(3)}/", f"x/y{k}/"])
                edits[f"{where}w{wave}g{g}n{k}.dat"] = _random_bytes(rng)
            name = f"g{g}"
            wt = pool.acquire(f"w{wave}-{name}", group_branch(run_id, name), head)
            for p, data in edits.items():
                if data is None:
                    (wt / p).unlink()
                else:
                    (wt / p).parent.mkdir(parents=True, exist_ok=True)
                    (wt / p).write_bytes(data)
            sha = pool.commit(wt, f"wave {wave} {name}", allow_empty=True)
            assert sha is not None
            pool.release(wt)
            real = {p for p, d in edits.items() if model.get(p) != d}
            assert changed_paths(repo, head, sha) == real
            expected_changes[name] = real
            branches.append((name, sha))
            for p, data in edits.items():
                if data is None:
                    model.pop(p, None)
                else:
                    model[p] = data
        result = merge_wave(repo, head, branches)
        assert result.conflicts == {} and result.merged == ["g0", "g1", "g2"]
        assert result.tree is not None
        new_head = commit_wave(repo, head, result.tree, wave_message(run_id, wave, f"wave {wave}"), ref)
        assert contents(repo, new_head) == model
        assert changed_paths(repo, head, new_head) == set().union(*expected_changes.values())
        assert find_wave_commit(repo, ref, run_id, wave) == new_head
        head = new_head
    assert git(repo, "rev-list", "--count", f"{head_sha(repo, 'main')}..{ref}") == "3"
    pool.close()
    assert user_view(repo) == before


def test_modify_delete_conflict_and_no_refs_written(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"api.py": "def f():\n    return 1\n"})
    base = head_sha(repo)
    refs_before = git(repo, "for-each-ref")
    branches = [
        ("remove", make_commit(repo, base, {"api.py": None})),
        ("edit", make_commit(repo, base, {"api.py": "def f():\n    return 2\n"})),
    ]
    result = merge_wave(repo, base, branches)
    assert result.merged == ["remove"] and result.conflicts == {"edit": ["api.py"]}
    assert result.tree is not None and "api.py" not in contents(repo, result.tree)
    assert contents(repo, result.conflicted_tree["edit"])["api.py"] == b"def f():\n    return 2\n"
    assert git(repo, "for-each-ref") == refs_before
