"""The pinned agent CLIs the tests run for real, installed by ``.ci/run`` from npm into a cache directory.

``PINNED`` names each CLI: its npm package, exact version and the program it installs. ``.ci/run`` installs
each with ``npm install --prefix $CACHE/<name>@<version> <package>@<version>`` (``python -m tests.agentcli
install`` does the same); :func:`agent_cli` finds it there. A missing CLI skips the test, unless
``AGENTWAVES_REQUIRE_AGENT_CLIS=1`` (set by ``.ci/run``), where it fails: CI must never skip them silently.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Cli:
    name: str
    package: str
    version: str
    bin: str


PINNED: dict[str, Cli] = {
    "claude-code": Cli("claude-code", "@anthropic-ai/claude-code", "2.1.332", "claude"),
    "codex": Cli("codex", "@openai/codex", "0.171.0", "codex"),
    # an ACP agent: Zed's ACP adapter over Codex (it talks the same Responses API as codex)
    "codex-acp": Cli("codex-acp", "@zed-industries/codex-acp", "0.16.0", "codex-acp"),
}


def cache_dir() -> Path:
    # the account's home, not $HOME: the tests run with a temporary HOME
    default = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "agentwaves-cli"
    return Path(os.environ.get("AGENTWAVES_CLI_CACHE") or default)


def cli_prefix(cli: Cli) -> Path:
    return cache_dir() / f"{cli.name}@{cli.version}"


def cli_path(name: str) -> Path:
    cli = PINNED[name]
    return cli_prefix(cli) / "node_modules" / ".bin" / cli.bin


def agent_cli(name: str) -> Path:
    """The pinned CLI ``name``; skips the test when it is not installed (fails under CI's requirement)."""
    path = cli_path(name)
    if path.exists() and os.access(path, os.X_OK):
        return path
    cli = PINNED[name]
    why = f"{cli.package}@{cli.version} is not installed in {cli_prefix(cli)}"
    why += " (install it: python -m tests.agentcli install)"
    if os.environ.get("AGENTWAVES_REQUIRE_AGENT_CLIS") == "1":
        pytest.fail(why)
    pytest.skip(why)


def install(names: list[str]) -> None:
    for name in names or list(PINNED):
        cli = PINNED[name]
        if cli_path(name).exists():
            continue
        prefix = cli_prefix(cli)
        prefix.mkdir(parents=True, exist_ok=True)
        argv = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(prefix)]
        subprocess.run([*argv, f"{cli.package}@{cli.version}"], check=True)
        print(f"installed {cli.package}@{cli.version} in {prefix}")


if __name__ == "__main__":  # python -m tests.agentcli install [NAME...]
    if sys.argv[1:2] != ["install"]:
        sys.exit("usage: python -m tests.agentcli install [NAME...]")
    install(sys.argv[2:])
