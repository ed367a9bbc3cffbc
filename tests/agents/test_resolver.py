"""The resolver agent on a real worktree: what counts as resolved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agentwaves.agents.loop import Limits, NoHooks, Transcript
from agentwaves.agents.resolver import has_markers, resolve
from agentwaves.agents.tools import WorktreeTools
from agentwaves.llm.fake import FakeLLM, FakeScript
from agentwaves.redact import Redactor
from agentwaves.sandbox.bwrap import NoSandbox

CONFLICTED = "# Notes\n<<<<<<< ours\nfrom a\n=======\nfrom b\n>>>>>>> theirs\n\nUsage\n=======\n\nrun it\n"


def _resolve(repo: Path, paths: list[str], llm: FakeLLM | None = None) -> tuple[bool, list[str]]:
    outcome = resolve(
        llm or FakeLLM(),
        repo,
        paths,
        group="g",
        feature="f",
        tools=WorktreeTools(repo, sandbox=NoSandbox()),
        limits=Limits(),
        hooks=NoHooks(),
        transcript=Transcript(None, Redactor({})),
    )
    return outcome.resolved, outcome.remaining


def test_a_setext_heading_is_not_a_conflict_marker(make_repo: Callable[..., Path]) -> None:
    """Markdown underlines a heading with '=======': that alone must not fail a resolution."""
    assert not has_markers("Usage\n=======\n")
    assert has_markers("<<<<<<< ours\nx\n") and has_markers("y\n>>>>>>> theirs\n")
    repo = make_repo({"README.md": "# r\n", "NOTES.md": CONFLICTED})
    resolved, remaining = _resolve(repo, ["NOTES.md"])
    text = (repo / "NOTES.md").read_text()
    assert "from a" in text and "from b" in text and "<<<<<<<" not in text
    assert "Usage\n=======" in text
    assert resolved and remaining == []


def test_markers_left_behind_are_reported(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"README.md": "# r\n", "NOTES.md": CONFLICTED})
    idle = FakeScript.model_validate({"resolver": {"g": [{"tool": "finish", "input": {"summary": "no"}}]}})
    assert _resolve(repo, ["NOTES.md"], FakeLLM(idle)) == (False, ["NOTES.md"])


def test_every_resolver_ends_the_same_way(make_repo: Callable[..., Path]) -> None:
    """resolution(), how every resolver ends: a failed agent is the summary; the markers decide."""
    from agentwaves.agents.loop import AgentFailed
    from agentwaves.agents.resolver import resolution
    from agentwaves.llm.base import Usage

    repo = make_repo({"README.md": "# r\n", "NOTES.md": CONFLICTED})

    def fails() -> tuple[str, Usage, float | None]:
        raise AgentFailed("claude-code hung (no output for 5 s)")

    out = resolution(repo, ["NOTES.md"], fails)
    assert (out.resolved, out.remaining, out.usage, out.cost_usd) == (False, ["NOTES.md"], Usage(), None)
    assert out.summary == "resolver failed: claude-code hung (no output for 5 s)"

    def fixes() -> tuple[str, Usage, float | None]:
        (repo / "NOTES.md").write_text("# Notes\nfrom a\nfrom b\n")
        return "kept both", Usage(input_tokens=7), 0.25

    out = resolution(repo, ["NOTES.md"], fixes)
    assert (out.resolved, out.remaining, out.summary) == (True, [], "kept both")
    assert (out.usage, out.cost_usd) == (Usage(input_tokens=7), 0.25)
