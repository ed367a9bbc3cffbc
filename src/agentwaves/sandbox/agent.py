"""Confining a whole external agent process (Claude Code, Codex, an ACP agent) with bubblewrap.

Two layers, both built from the run's :class:`~agentwaves.sandbox.bwrap.BwrapSandbox` settings:

- **the agent** (:meth:`AgentJail.wrap`): ``/`` read-only, a private ``/tmp``, the worktree, the agent's
  own state paths (``~/.claude``, ``~/.claude.json``, ...) and its ``TMPDIR`` writable; the worktree's
  ``.git`` and the repository's git directory read-only; the usual credential files hidden (the agent's
  own state is bound back); its own PID namespace; the network kept, since the agent calls its API.
- **its shell commands** (:meth:`AgentJail.shell_wrapper`): a script the agent runs each command through
  (Claude Code's ``CLAUDE_CODE_SHELL_PREFIX``): a nested bubblewrap with no network, everything read-only
  but the worktree and ``TMPDIR``, the agent's credential files hidden and secret-named variables unset.

With ``--sandbox none`` (:class:`~agentwaves.sandbox.bwrap.NoSandbox`) the agent runs unconfined.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentwaves.sandbox.bwrap import BwrapSandbox, Sandbox, _credential_paths, _git_dirs
from agentwaves.redact import is_secret_name

SHELL_WRAPPER = """#!/bin/sh
# One shell command of the agent ($1), confined by agentwaves. The environments of this command's
# ancestors (the agent's, holding its API key) are hidden from it; secret-named variables are unset.
hide=""
pid=$PPID
while [ "$pid" -gt 1 ] 2>/dev/null; do
  [ -r "/proc/$pid/environ" ] && hide="$hide --ro-bind /dev/null /proc/$pid/environ"
  pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)
done
exec env {unset} {bwrap} $hide -- /bin/bash -c "$1"
"""


@dataclass
class AgentJail:
    sandbox: Sandbox
    worktree: Path
    tmpdir: Path
    state: list[Path] = field(default_factory=list)  # the agent's own files: writable by it, not by commands
    secrets: list[Path] = field(default_factory=list)  # hidden from its commands
    hidden: list[Path] = field(default_factory=list)  # hidden from the agent itself (e.g. ~/.codex)
    writable: bool = True  # False: the worktree is read-only too (the planner)

    @property
    def confined(self) -> bool:
        return isinstance(self.sandbox, BwrapSandbox)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """The argv that runs the agent itself confined (unchanged without bubblewrap)."""
        if not isinstance(self.sandbox, BwrapSandbox):
            return list(argv)
        cwd = self.worktree.resolve()
        args = [self.sandbox.bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        if self.sandbox.user_namespace:
            args.append("--unshare-user")
        args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for secret in _credential_paths():
            args += ["--tmpfs", str(secret)] if secret.is_dir() else ["--ro-bind", "/dev/null", str(secret)]
        for path in existing(self.hidden):
            args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
        for path in self.state:
            args += ["--bind", str(path), str(path)]
        for gitdir in _git_dirs(cwd):
            args += ["--ro-bind", str(gitdir), str(gitdir)]
        args += ["--bind", str(self.tmpdir), str(self.tmpdir)]
        args += ["--bind" if self.writable else "--ro-bind", str(cwd), str(cwd)]
        if os.path.lexists(cwd / ".git"):
            args += ["--ro-bind", str(cwd / ".git"), str(cwd / ".git")]
        return [*args, "--chdir", str(cwd), "--", *argv]

    def shell_wrapper(self, env: Mapping[str, str]) -> Path | None:
        """Write the script that runs one shell command (``$1``) confined; None without bubblewrap."""
        if not isinstance(self.sandbox, BwrapSandbox):
            return None
        cwd = self.worktree.resolve()
        args = [self.sandbox.bwrap, "--die-with-parent", "--unshare-net", "--unshare-pid"]
        if self.sandbox.user_namespace:
            args.append("--unshare-user")
        # a nested sandbox cannot mount a new /proc: the agent's is bound read-only
        args += ["--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--ro-bind", "/proc", "/proc"]
        args += ["--bind", str(self.tmpdir), str(self.tmpdir)]
        if self.writable:
            args += ["--bind", str(cwd), str(cwd)]
            if os.path.lexists(cwd / ".git"):
                args += ["--ro-bind", str(cwd / ".git"), str(cwd / ".git")]
        for secret in self.secrets:
            if secret.exists():
                args += (
                    ["--tmpfs", str(secret)] if secret.is_dir() else ["--ro-bind", "/dev/null", str(secret)]
                )
        unset = " ".join(f"-u {shlex.quote(k)}" for k in sorted(env) if is_secret_name(k))
        script = self.tmpdir / "agentwaves-shell"
        command = " ".join(shlex.quote(a) for a in args)
        script.write_text(SHELL_WRAPPER.format(unset=unset, bwrap=command))
        script.chmod(0o555)
        return script


def existing(paths: Iterable[Path]) -> list[Path]:
    return [p for p in paths if p.exists()]
