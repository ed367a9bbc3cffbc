"""The implementer's tools, confined to one task's git worktree.

Every path an agent passes goes through :func:`agentwaves.sandbox.paths.confine`, the single gate.
Writes are atomic, capped, and never go through a symlink. ``run`` executes commands through
:mod:`agentwaves.sandbox.proc`, in the run's :mod:`agentwaves.sandbox.bwrap`, with a minimal environment
free of secrets. Tool failures come back as error outcomes the model sees; :meth:`WorktreeTools.execute`
never raises.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import stat
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from agentwaves.agents.search import SEARCH_TIMEOUT, SearchTimeout, match_files
from agentwaves.agents.toolspecs import MAX_LIST, MAX_MATCHES, SPECS, check_input
from agentwaves.git.ops import worktree_changes
from agentwaves.llm.base import ToolSpec
from agentwaves.redact import is_secret_name
from agentwaves.sandbox.bwrap import Sandbox
from agentwaves.sandbox.homes import make_home, remove_home
from agentwaves.sandbox.paths import (
    PathRefused,
    confine,
    glob_regex,
    open_beneath,
    parent_beneath,
    walk_beneath,
)
from agentwaves.sandbox.proc import Limits, run_sandboxed
from agentwaves.truncation import truncated_write_problem

MAX_LINE = 300
WRITE_TOOLS = frozenset({"write_file", "edit_file"})  # the tools that write a ``path``; ``write_guard``


@dataclass
class ToolOutcome:
    """The result of one tool call. ``finished`` is set by ``finish``, with its summary and notes."""

    content: str
    is_error: bool
    finished: bool = False
    summary: str | None = None
    notes: str | None = None


def command_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for ``run``: a minimal allowlist plus ``extra``, without anything secret-looking."""
    env = {
        "PATH": os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": os.environ.get("LANG") or "C.UTF-8",
        "TERM": "dumb",
        "PAGER": "cat",
        "GIT_PAGER": "cat",
        "GIT_TERMINAL_PROMPT": "0",
        "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ litter in the agent's diff
        **(extra or {}),
    }
    return {k: v for k, v in env.items() if not is_secret_name(k)}


@functools.cache
def _umask() -> int:
    """The process umask, read without ``os.umask`` (which would briefly change it for every thread)."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    return 0o022


class WorktreeTools:
    """The seven implementer tools, bound to one worktree. Not thread-safe: one agent per instance."""

    def __init__(
        self,
        root: Path,
        *,
        sandbox: Sandbox,
        env: dict[str, str] | None = None,
        run_timeout: float = 120.0,
        max_run_timeout: float = 600.0,
        max_output: int = 30_000,
        max_file_bytes: int = 2_000_000,
        search_timeout: float = SEARCH_TIMEOUT,
        limits: Limits | None = None,
        write_guard: Callable[[str], str | None] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.write_guard = write_guard  # path -> None (may write) or the refusal shown to the agent
        self.sandbox = sandbox
        self.env = dict(env or {})
        self.run_timeout = run_timeout
        self.max_run_timeout = max_run_timeout
        self.max_output = max_output
        self.max_file_bytes = max_file_bytes
        self.search_timeout = search_timeout
        self.limits = limits
        self.written: set[str] = set()  # every path the file tools wrote
        self.ran_command = False  # ``run`` was called: files may have changed beyond ``written``
        self._home: Path | None = None
        self._handlers: dict[str, Callable[..., ToolOutcome]] = {
            spec.name: getattr(self, f"_{spec.name}") for spec in SPECS
        }

    def specs(self) -> list[ToolSpec]:
        return [spec.model_copy(deep=True) for spec in SPECS]

    def execute(self, name: str, input: dict[str, Any]) -> ToolOutcome:
        """Run one tool call; every failure becomes an error outcome naming the problem."""
        handler = self._handlers.get(name)
        if handler is None:
            return ToolOutcome(f"unknown tool {name!r}; available tools: {', '.join(self._handlers)}", True)
        spec = next(s for s in SPECS if s.name == name)
        problem = check_input(spec.input_schema, input)
        if problem:
            return ToolOutcome(f"invalid input for {name}: {problem}", True)
        try:
            refusal = self._lease_refusal(input["path"]) if name in WRITE_TOOLS else None
            if refusal is not None:
                return ToolOutcome(refusal, True)
            return handler(**input)
        except PathRefused as exc:
            return ToolOutcome(f"refused: {exc}", True)
        except OSError as exc:
            where = f" ({self._rel(Path(exc.filename))})" if isinstance(exc.filename, str) else ""
            return ToolOutcome(f"{name} failed: {exc.strerror or exc}{where}", True)
        except Exception as exc:
            return ToolOutcome(f"{name} failed: {type(exc).__name__}: {exc}", True)

    def changed_paths(self) -> set[str]:
        """Paths differing from HEAD (modified, added, deleted, renamed, untracked), per ``git status``."""
        return worktree_changes(self.root)

    def close(self) -> None:
        """Remove the private HOME used by ``run``."""
        if self._home is not None:
            remove_home(self._home)
            self._home = None

    def __enter__(self) -> WorktreeTools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ helpers

    def _lease_refusal(self, path: str) -> str | None:
        """The ``write_guard``'s refusal of a write to ``path`` (as ``confine`` would name it), or None.
        A path ``confine`` refuses is left to it."""
        if self.write_guard is None:
            return None
        rel = PurePosixPath(path).as_posix()
        if rel in ("", ".") or rel.startswith("/") or ".." in rel.split("/"):
            return None
        return self.write_guard(rel)

    def _rel(self, path: Path) -> str:
        with contextlib.suppress(ValueError):
            return path.relative_to(self.root).as_posix() or "."
        return path.name

    def _read_bytes(self, target: Path, shown: str) -> bytes:
        try:  # opened component by component, never through a link the kernel follows
            fd = open_beneath(self.root, self._rel(target))
        except OSError as exc:
            exc.filename = str(target)
            raise
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PathRefused(f"{shown}: is not a regular file")
            data = f.read(self.max_file_bytes + 1)
        if len(data) > self.max_file_bytes:
            raise PathRefused(f"{shown}: larger than {self.max_file_bytes} bytes")
        return data

    def _atomic_write(self, target: Path, content: str, shown: str) -> ToolOutcome:
        data = content.encode("utf-8")
        if len(data) > self.max_file_bytes:
            return ToolOutcome(
                f"refused: {shown}: content is {len(data)} bytes, over {self.max_file_bytes}", True
            )
        # the parent is walked (and made) component by component and held open: the file is created and
        # renamed into place in that directory, so a symlink swapped in meanwhile is replaced, not followed
        with parent_beneath(self.root, shown) as (parent, name):
            try:
                mode = stat.S_IMODE(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
            except FileNotFoundError:
                mode = 0o666 & ~_umask()
            tmp = f".{name}.{secrets.token_hex(4)}.agentwaves-tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(tmp, flags, 0o600, dir_fd=parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    os.fchmod(f.fileno(), mode)
                os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=parent)
                raise
        self.written.add(shown)
        return ToolOutcome(f"wrote {shown} ({len(data)} bytes)", False)

    def _walk(self, base: Path) -> Iterator[Path]:
        """Files and symlinks under ``base``, sorted, never following symlinks or entering ``.git``."""
        for rel, _ in walk_beneath(self.root, self._rel(base)):
            yield self.root / rel

    # ------------------------------------------------------------------------------------ the tools

    def _read_file(self, path: str) -> ToolOutcome:
        target = confine(self.root, path)
        shown = self._rel(target)
        data = self._read_bytes(target, shown)
        if b"\0" in data[:8192]:
            return ToolOutcome(f"{shown} is a binary file ({len(data)} bytes); not shown", True)
        text = data.decode("utf-8", errors="replace")
        if len(text) > self.max_output:
            cut = len(text) - self.max_output
            return ToolOutcome(
                f"{text[: self.max_output]}\n[{shown}: {cut} more characters not shown; use search or run "
                f"(e.g. sed -n 'A,Bp' {shown}) to read the rest]",
                False,
            )
        return ToolOutcome(text, False)

    def _write_file(self, path: str, content: str) -> ToolOutcome:
        target = confine(self.root, path, write=True)
        problem = truncated_write_problem(content, self._rel(target))
        if problem:
            return ToolOutcome(problem, True)
        return self._atomic_write(target, content, self._rel(target))

    def _edit_file(self, path: str, old: str, new: str) -> ToolOutcome:
        target = confine(self.root, path, write=True)
        shown = self._rel(target)
        if not old:
            return ToolOutcome("old must not be empty; to create or overwrite a file use write_file", True)
        text = self._read_bytes(target, shown).decode("utf-8")
        count = text.count(old)
        if count != 1:
            hint = "add surrounding lines to make it unique" if count else "check whitespace and indentation"
            return ToolOutcome(
                f"old text matched {count} times in {shown}; it must match exactly once ({hint})", True
            )
        outcome = self._atomic_write(target, text.replace(old, new, 1), shown)
        return ToolOutcome(f"edited {shown}", False) if not outcome.is_error else outcome

    def _list_files(self, path: str = ".", pattern: str | None = None) -> ToolOutcome:
        base = confine(self.root, path or ".")
        if not base.is_dir():
            return ToolOutcome(f"{path}: not a directory", True)
        regex = glob_regex(pattern) if pattern else None
        shown: list[str] = []
        more = 0
        for file in self._walk(base):
            rel_base = file.relative_to(base).as_posix()
            if regex and not regex.match(rel_base if "/" in (pattern or "") else file.name):
                continue
            if len(shown) < MAX_LIST:
                shown.append(self._rel(file))
            else:
                more += 1
        if not shown:
            return ToolOutcome("no files found", False)
        tail = f"\n[... {more} more files not shown; narrow with path or pattern]" if more else ""
        return ToolOutcome("\n".join(shown) + tail, False)

    def _search(self, pattern: str, path: str = ".") -> ToolOutcome:
        try:
            re.compile(pattern)
        except re.error as exc:
            return ToolOutcome(f"invalid regular expression {pattern!r}: {exc}", True)
        base = confine(self.root, path or ".")
        found = [base] if base.is_file() else self._walk(base)
        files = [(self._rel(f), self._rel(f)) for f in found if not f.is_symlink()]
        try:
            matches = match_files(
                pattern,
                files,
                root=str(self.root),
                max_matches=MAX_MATCHES,
                max_line=MAX_LINE,
                max_output=self.max_output,
                max_file_bytes=self.max_file_bytes,
                timeout=self.search_timeout,
            )
        except SearchTimeout as exc:
            return ToolOutcome(
                f"{exc}: the pattern backtracks too much; simplify it or narrow the path", True
            )
        lines = matches.lines
        if matches.truncated:
            lines.append("[... more matches not shown; narrow the pattern or path]")
        return ToolOutcome("\n".join(lines) if lines else "no matches", False)

    def _run(self, command: str, timeout: float | None = None) -> ToolOutcome:
        if timeout is not None and timeout <= 0:
            return ToolOutcome("timeout must be a positive number of seconds", True)
        limit = min(self.run_timeout if timeout is None else float(timeout), self.max_run_timeout)
        self.ran_command = True
        if self._home is None:
            self._home = make_home()
            weakref.finalize(self, remove_home, self._home)
        result = run_sandboxed(
            command,
            self.root,
            sandbox=self.sandbox,
            env=command_env(self._home, self.env),
            timeout=limit,
            max_output=self.max_output,
            writable=[self._home],
            limits=self.limits,
        )
        if result.timed_out:
            head = f"timed out after {limit:g}s; the command and all its processes were killed"
        elif result.output_limit_hit:
            head = "killed: the command printed too much output"
        else:
            head = f"exit code: {result.exit_code}"
        body = result.output
        if result.omitted_bytes:
            body += f"\n[... output truncated: {result.omitted_bytes} more bytes not shown]"
        is_error = result.exit_code != 0
        return ToolOutcome(f"{head}\n{body}" if body else head, is_error)

    def _finish(self, summary: str, notes: str | None = None) -> ToolOutcome:
        if not summary.strip():
            return ToolOutcome("summary must not be empty: say what you changed and how you checked it", True)
        return ToolOutcome("finished", False, finished=True, summary=summary.strip(), notes=notes)
