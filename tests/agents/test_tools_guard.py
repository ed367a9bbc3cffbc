"""The file tools ask their ``write_guard`` before every write; a refusal writes nothing."""

from __future__ import annotations

from pathlib import Path

from agentwaves.agents.tools import WorktreeTools
from agentwaves.sandbox.bwrap import NoSandbox


def test_write_guard_refuses_write_and_edit_and_allows_the_rest(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "shared.py").write_text("old\n")
    asked: list[str] = []

    def guard(path: str) -> str | None:
        asked.append(path)
        return "src/shared.py is being written by task a in group g1" if path == "src/shared.py" else None

    tools = WorktreeTools(tmp_path, sandbox=NoSandbox(), write_guard=guard)
    out = tools.execute("write_file", {"path": "./src//shared.py", "content": "new\n"})
    assert out.is_error and out.content == "src/shared.py is being written by task a in group g1"
    out = tools.execute("edit_file", {"path": "src/shared.py", "old": "old", "new": "new"})
    assert out.is_error and "task a in group g1" in out.content
    assert (tmp_path / "src" / "shared.py").read_text() == "old\n" and tools.written == set()
    assert not tools.execute("write_file", {"path": "src/free.py", "content": "x\n"}).is_error
    assert not tools.execute("read_file", {"path": "src/shared.py"}).is_error  # reads are not guarded
    assert asked == ["src/shared.py", "src/shared.py", "src/free.py"]
    assert tools.execute("write_file", {"path": "../x", "content": ""}).content.startswith("refused:")
