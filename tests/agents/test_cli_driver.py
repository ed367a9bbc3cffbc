"""The subprocess runner external agent drivers share: final event, hangs, process groups."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from agentwaves.agents.drivers.runner import last_line, run_jsonl


def program(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "agent.py"
    script.write_text("import json, os, subprocess, sys, time\n" + body)
    return [sys.executable, str(script)]


def alive(pid: int, wait: float = 3.0) -> bool:
    """Whether ``pid`` still runs (not gone, not a zombie) after up to ``wait`` seconds."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.05)
    return True


def test_events_and_text_lines_reach_their_callbacks(tmp_path: Path) -> None:
    seen: list[dict] = []
    texts: list[str] = []
    argv = program(
        tmp_path, "print(json.dumps({'type': 'a'}))\nprint('plain')\nprint(json.dumps({'type': 'result'}))\n"
    )
    out = run_jsonl(
        argv, cwd=tmp_path, env=os.environ, on_event=lambda e: seen.append(e) or e["type"] == "result",
        on_text=texts.append, idle_timeout=10,
    )  # fmt: skip
    assert out.returncode == 0 and out.killed == ""
    assert [e["type"] for e in seen] == ["a", "result"] and texts == ["plain"]


def test_no_output_for_the_idle_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    body = (
        f"p = subprocess.Popen(['sleep', '60']); open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "print(json.dumps({'type': 'system'}), flush=True)\ntime.sleep(60)\n"
    )
    t0 = time.monotonic()
    out = run_jsonl(
        program(tmp_path, body), cwd=tmp_path, env=os.environ, on_event=lambda e: False, idle_timeout=1
    )
    assert out.killed == "no output for 1 s" and time.monotonic() - t0 < 10
    assert not alive(int(pidfile.read_text()))  # the grandchild went with the group


def test_not_exiting_after_the_final_event_is_killed_after_the_grace(tmp_path: Path) -> None:
    body = "print(json.dumps({'type': 'result'}), flush=True)\ntime.sleep(60)\n"
    t0 = time.monotonic()
    out = run_jsonl(
        program(tmp_path, body), cwd=tmp_path, env=os.environ, on_event=lambda e: True,
        idle_timeout=30, exit_grace=1,
    )  # fmt: skip
    assert out.killed == "it did not exit 1 s after its final event" and time.monotonic() - t0 < 10


def test_stderr_tail_is_kept(tmp_path: Path) -> None:
    body = "sys.stderr.write('x' * 10000 + '\\nlast words\\n'); sys.exit(3)\n"
    out = run_jsonl(
        program(tmp_path, body), cwd=tmp_path, env=os.environ, on_event=lambda e: False, idle_timeout=10
    )
    assert out.returncode == 3 and out.stderr.endswith("last words\n") and len(out.stderr) <= 4000


def test_a_clis_last_error_line_loses_its_colours_and_titles(tmp_path: Path) -> None:
    """The one-line error of a failed task is the CLI's last stderr line, read as a person would see it
    (codex-acp colours its log lines): terminal codes are dropped, the text kept."""
    body = (
        "sys.stderr.write('starting\\n\\x1b[2m2026-12-01\\x1b[0m \\x1b[31mERROR\\x1b[0m '"
        " + 'codex_acp: \\x1b]0;owned\\x07boom\\n')\nsys.exit(3)\n"
    )
    out = run_jsonl(
        program(tmp_path, body), cwd=tmp_path, env=os.environ, on_event=lambda e: False, idle_timeout=30
    )
    assert out.returncode == 3
    assert last_line(out.stderr) == "2026-12-01 ERROR codex_acp: boom"


def test_the_doctor_line_of_a_cli_too_old_or_not_logged_in(tmp_path: Path, monkeypatch) -> None:
    """doctor.cli_check, what claude-code's and codex's doctor lines share."""
    from agentwaves.agents.doctor import cli_check
    from agentwaves.agents.drivers.runner import AgentProgram
    from agentwaves.config import Config

    spec = AgentProgram("demo", "demo-agent", "@example/demo", "2.0.0")
    old = tmp_path / "demo-agent"
    old.write_text("#!/bin/sh\necho 'demo 1.9.9'\n")
    old.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    config = Config(agent="builtin")
    check = cli_check(spec, config, lambda: "DEMO_KEY", "log in with `demo login`")
    assert (check.installed, check.ok, check.path) == (True, False, str(old))
    assert "older than 2.0.0" in check.detail and "npm install -g @example/demo" in check.detail
    old.write_text("#!/bin/sh\necho 'demo 2.1.0'\n")
    check = cli_check(spec, config, lambda: None, "log in with `demo login`")
    assert (check.ok, check.version, check.auth, check.detail) == (
        False,
        "2.1.0",
        None,
        "log in with `demo login`",
    )
    check = cli_check(spec, config, lambda: "DEMO_KEY", "log in with `demo login`")
    assert (check.ok, check.auth, check.detail) == (True, "DEMO_KEY", "")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    check = cli_check(spec, config, lambda: "DEMO_KEY", "")
    assert (check.installed, check.ok, check.detail) == (False, False, "npm install -g @example/demo")
