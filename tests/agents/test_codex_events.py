"""codex: its `file_change` and `mcp_tool_call` items show as `tool` events, from the real pinned `codex`.

A patch: the stub has codex run ``apply_patch`` through its shell tool, which codex intercepts and
applies itself (a ``file_change`` item, not a ``command_execution``). An MCP call: the user's
``config.toml`` (copied into the run's CODEX_HOME) names a stdio MCP server, a 30-line Python one here;
codex starts it inside agentwaves' jail (so with the jail's private ``/tmp``), offers its tools in the
namespace ``mcp__<server>``, and the stub calls one. Under agentwaves'
``approval_policy = "never"`` codex refuses a call that needs approval unless the server's
``default_tools_approval_mode = "approve"``: both cases are run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.agents.codex_support import done, shell
from tests.e2e.helpers import git, latest_state, write_yaml
from tests.reliability.support import events

PATCH = "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: p.txt\n+patched\n*** End Patch\nEOF\n"
MCP_SERVER = """
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("id") is None:
        continue
    method, params = msg.get("method"), msg.get("params") or {}
    if method == "initialize":
        version = params.get("protocolVersion", "2025-06-18")
        info = {"name": "echo", "version": "1.0.0"}
        result = {"protocolVersion": version, "capabilities": {"tools": {}}, "serverInfo": info}
    elif method == "tools/list":
        schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
        result = {"tools": [{"name": "say", "description": "Echo the text.", "inputSchema": schema}]}
    elif method == "tools/call":
        text = str((params.get("arguments") or {}).get("text"))
        result = {"content": [{"type": "text", "text": "echo: " + text}], "isError": text == "fail"}
    else:
        error = {"code": -32601, "message": "no such method"}
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": error}), flush=True)
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
"""


def mcp_call(server: str, tool: str, **arguments: str) -> dict:
    return {"call": {"name": tool, "namespace": f"mcp__{server}", "arguments": arguments}}


def one_task(make_repo, run_cli, tmp_path: Path) -> tuple[Path, dict]:
    repo = make_repo()
    plan = write_yaml(tmp_path / "plan.yaml", {"feature": "f", "tasks": [{"id": "a", "title": "A"}]})
    res = run_cli("execute", "--agent", "codex", "--repo", repo, "--plan", plan)
    assert res.exit_code == 0, res.stderr + res.stdout
    state = latest_state(repo)
    assert state["state"] == "done"
    return repo, state


def test_a_patch_codex_applies_is_a_tool_event_and_committed(make_repo, run_cli, codex_stub, tmp_path):
    codex_stub.script = {"a": [shell(PATCH), done("patched p.txt")]}
    repo, state = one_task(make_repo, run_cli, tmp_path)
    tools = [(e["tool"], e["arg"], e["error"]) for e in events(repo) if e["type"] == "tool"]
    assert len(tools) == 1, tools  # one event for the item, not also a shell event
    name, arg, error = tools[0]
    assert (name, arg, error) == ("apply_patch", "p.txt", False)  # relative to the worktree
    assert git(repo, "show", f"{state['branch']}:p.txt") == "patched"
    log = next((repo / ".agentwaves" / "runs").glob("*/logs/a.log")).read_text()
    assert '"apply_patch"' in log


def test_mcp_tool_calls_are_tool_events(make_repo, run_cli, codex_stub, tmp_path):
    home = Path(os.environ["CODEX_HOME"])
    # the code inline and the interpreter itself, not a venv's link to it: codex starts the server inside
    # agentwaves' jail, whose /tmp is its own (a venv there is not in it)
    python = os.path.realpath(sys.executable)
    entry = f'command = {json.dumps(python)}\nargs = ["-I", "-c", {json.dumps(MCP_SERVER)}]\n'
    with (home / "config.toml").open("a") as config:
        config.write(f'\n[mcp_servers.echo]\n{entry}default_tools_approval_mode = "approve"\n')
    codex_stub.script = {
        "a": [mcp_call("echo", "say", text="hi"), mcp_call("echo", "say", text="fail"), done("ok")]
    }
    repo, _ = one_task(make_repo, run_cli, tmp_path)
    tools = [(e["tool"], e["error"]) for e in events(repo) if e["type"] == "tool"]
    # one event per call, when it completed, with how it ended (the server said isError to "fail")
    assert tools == [("mcp:echo.say", False), ("mcp:echo.say", True)]
    # codex sent the server's answer back to the model: the call really went through the MCP server
    assert "echo: hi" in json.dumps(codex_stub.requests_of("a")[-1]["input"])
    log = next((repo / ".agentwaves" / "runs").glob("*/logs/a.log")).read_text().splitlines()
    records = [json.loads(line)["data"] for line in log if json.loads(line)["kind"] == "tool"]
    assert [(c["name"], c["result"], c["is_error"]) for c in records] == [
        ("mcp:echo.say", "echo: hi", False),
        ("mcp:echo.say", "echo: fail", True),
    ]


def test_a_failing_shell_command_is_one_tool_event_with_its_error(make_repo, run_cli, codex_stub, tmp_path):
    codex_stub.script = {"a": [shell("ls no-such-file"), shell("echo ok > ok.txt"), done("ok")]}
    repo, state = one_task(make_repo, run_cli, tmp_path)
    tools = [(e["tool"], e["arg"], e["error"]) for e in events(repo) if e["type"] == "tool"]
    # exactly one event per command, emitted when it completed: the failed one says so
    assert [(name, error) for name, _, error in tools] == [("shell", True), ("shell", False)], tools
    assert "no-such-file" in tools[0][1] and "ok.txt" in tools[1][1]
    assert git(repo, "show", f"{state['branch']}:ok.txt") == "ok"
