"""Eager's stacked bases: per-wave chains on real git objects, carried over when the head moves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agentwaves.git.merge import commit_tree, tree_of
from agentwaves.git.ops import head_sha
from agentwaves.git.stacking import Branch, StackedBases, stack
from tests.run.test_merge import contents, make_commit


def _repo(make_repo: Callable[..., Path]) -> tuple[Path, str]:
    repo = make_repo({"README.md": "# r\n", "shared.txt": "1\n2\n3\n"})
    return repo, head_sha(repo)


def test_stack_merges_only_what_each_branch_changed(make_repo: Callable[..., Path]) -> None:
    repo, base = _repo(make_repo)
    a = make_commit(repo, base, {"a.txt": "a\n"})
    # b was stacked on a (its fork holds a's file); c forked from the base and deleted the README
    b = make_commit(repo, a, {"b.txt": "b\n"})
    c = make_commit(repo, base, {"README.md": None, "c.txt": "c\n"})
    commit, tree, conflicts = stack(
        repo, base, [Branch("a", a, base), Branch("b", b, a), Branch("c", c, base)]
    )
    assert conflicts == []
    assert tree == tree_of(repo, commit)
    assert contents(repo, commit) == {
        "shared.txt": b"1\n2\n3\n",
        "a.txt": b"a\n",
        "b.txt": b"b\n",
        "c.txt": b"c\n",
    }
    # b alone, against its fork: a's file is NOT brought in (only what b changed)
    only_b, _, _ = stack(repo, base, [Branch("b", b, a)])
    assert set(contents(repo, only_b)) == {"README.md", "shared.txt", "b.txt"}


def test_stack_reports_a_conflict_and_returns_the_commit_before_it(make_repo: Callable[..., Path]) -> None:
    repo, base = _repo(make_repo)
    a = make_commit(repo, base, {"shared.txt": "1\nA\n3\n"})
    x = make_commit(repo, base, {"shared.txt": "1\nX\n3\n"})
    commit, _, conflicts = stack(repo, base, [Branch("a", a, base), Branch("x", x, base)])
    assert conflicts == ["shared.txt"]
    assert contents(repo, commit)["shared.txt"] == b"1\nA\n3\n"


def test_chain_is_extended_then_carried_over_to_a_new_head(make_repo: Callable[..., Path]) -> None:
    repo, head = _repo(make_repo)
    bases = StackedBases(repo)
    a = Branch("a", make_commit(repo, head, {"a.txt": "a\n"}), head)
    first = bases.base(3, head, [a], [a])
    assert first is not None and set(contents(repo, first)) == {"README.md", "shared.txt", "a.txt"}
    b = Branch("b", make_commit(repo, head, {"b.txt": "b\n"}), head)
    second = bases.base(3, head, [a, b], [b])
    assert second is not None
    assert set(contents(repo, second)) == {"README.md", "shared.txt", "a.txt", "b.txt"}
    assert head_sha(repo, f"{second}^1") == first  # extended, not rebuilt
    # wave 1 (group a) is committed: the new head holds a; the chain keeps b on top of it
    new_head = commit_tree(repo, tree_of(repo, first), [head], "agentwaves: wave 1 complete (a)")
    c = Branch("c", make_commit(repo, new_head, {"c.txt": "c\n"}), new_head)
    third = bases.base(3, new_head, [b, c], [c])
    assert third is not None
    assert set(contents(repo, third)) == {"README.md", "shared.txt", "a.txt", "b.txt", "c.txt"}
    # a later wave's first chain starts from a copy of wave 3's: one merge on top of it
    d = Branch("d", make_commit(repo, new_head, {"d.txt": "d\n"}), new_head)
    later = bases.base(6, new_head, [b, c, d], [d])
    assert later is not None and head_sha(repo, f"{later}^1") == third
    assert "d.txt" in contents(repo, later)
    # another wave's chain is its own: only what it is given
    other = bases.base(2, new_head, [c], [c])
    assert other is not None and set(contents(repo, other)) == {"README.md", "shared.txt", "a.txt", "c.txt"}


def test_conflicting_chain_falls_back_to_what_the_group_needs_then_to_no_base(
    make_repo: Callable[..., Path],
) -> None:
    repo, head = _repo(make_repo)
    bases = StackedBases(repo)
    a = Branch("a", make_commit(repo, head, {"shared.txt": "1\nA\n3\n", "a.txt": "a\n"}), head)
    x = Branch("x", make_commit(repo, head, {"shared.txt": "1\nX\n3\n"}), head)
    base = bases.base(2, head, [a, x], [a])
    assert base is not None and contents(repo, base)["shared.txt"] == b"1\nA\n3\n"
    assert "a.txt" in contents(repo, base)
    assert bases.base(2, head, [a, x], [a, x]) is None  # what it needs conflicts: wait for a commit
    assert bases.base(2, head, [], []) == head
