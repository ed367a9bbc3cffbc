"""What `execute --json` loads: a scripted or CI run prints JSON lines, so the terminal renderer (rich),
the JUnit reader (xml.etree) and, for an external agent, the retry library (tenacity) are not imported.
Their imports were about 0.1 s of CPU, paid once per run (docs/benchmarks.md, "Agents")."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.e2e.helpers import write_yaml

PLAN = {"feature": "startup", "tasks": [{"id": "a", "title": "A", "files": ["a.py"]}]}
SCRIPT = {
    "tasks": {
        "a": [
            {"tool": "write_file", "input": {"path": "a.py", "content": "A = 1\n"}},
            {"tool": "finish", "input": {"summary": "a done"}},
        ]
    }
}
# runs the CLI in this process and writes the names of the loaded modules to argv[1] at exit
WRAPPER = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from agentwaves.cli.app import main
main(sys.argv[1:])
"""
HEAVY = ("rich", "xml.etree.ElementTree")


def _loaded(tmp_path: Path, repo: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    argv = [sys.executable, "-c", WRAPPER, str(out), "execute", "--repo", str(repo), "--plan", str(plan)]
    done = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])["state"] == "done"
    return set(json.loads(out.read_text()))


def test_execute_json_loads_neither_rich_nor_xml(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    repo = make_repo({"README.md": "# demo\n"})
    fake = write_yaml(tmp_path / "script.yaml", SCRIPT)
    loaded = _loaded(tmp_path, repo, "--llm", "fake", "--fake-script", str(fake), "--json")
    assert not [m for m in HEAVY if m in loaded]
    assert "agentwaves.run.feedback.junit" in loaded  # the module is there; its parser's import is not
    # the fake's calls run through RetryingLLM, which loads tenacity when it first retries or calls
    assert "agentwaves.llm.retry" in loaded


TENACITY = """
import sys
import agentwaves.agents.backend, agentwaves.config, agentwaves.run.session
assert "tenacity" not in sys.modules, "tenacity loaded at import"
from agentwaves.llm.base import CallContext, Message, Request, TextBlock
from agentwaves.llm.registry import make_llm
request = Request(system="s", messages=[Message(role="user", content=[TextBlock(text="x")])])
make_llm("fake").complete(request, CallContext(agent="implementer", task_id="a"))
assert "tenacity" in sys.modules, "the call ran without the retry library"
"""


def test_tenacity_is_imported_only_by_a_retrying_call() -> None:
    done = subprocess.run([sys.executable, "-c", TENACITY], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_command_line_naming_a_command_builds_only_its_module() -> None:
    """`agentwaves status` imports its own CLI module, not the nine others (nor the demo); the help still
    lists every command, in one order, whichever was run first in the process."""
    probe = """
import sys
from agentwaves.cli import app
try:
    app.main(["status", "--help"])
except SystemExit:
    pass
print("LOADED", sorted(m for m in sys.modules if m.startswith("agentwaves.cli.") or m == "agentwaves.demo"))
try:
    app.main(["--help"])
except SystemExit:
    pass
names = [c.name for c in app.app.registered_commands]
assert set(names) == set(app.COMMANDS), (names, sorted(app.COMMANDS))
print("NAMES", names)
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = next(line for line in done.stdout.splitlines() if line.startswith("LOADED "))
    assert loaded == "LOADED ['agentwaves.cli.app', 'agentwaves.cli.options', 'agentwaves.cli.runs']"
    names = next(line for line in done.stdout.splitlines() if line.startswith("NAMES "))
    assert names.startswith("NAMES ['analyze', 'plan', 'execute', 'resume', 'status', 'runs'"), names
    version = subprocess.run(
        [sys.executable, "-m", "agentwaves", "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.stdout.strip().startswith("agentwaves ") and version.returncode == 0
