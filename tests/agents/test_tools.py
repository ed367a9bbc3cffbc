"""The implementer's worktree tools: confinement, schemas, and ``run`` limits, on a real repo and worktree.

Every test gets a git repository, a linked worktree and a sentinel folder next to them; the fixture checks
after each test that the sentinel, the repository's checkout and its ``.git`` (HEAD, config, refs,
objects, hooks, the worktree's HEAD) are unchanged. Commands here run without bubblewrap (``NoSandbox``),
so hostile ones only do what stays inside the worktree or must be refused by the tools themselves; the
sandbox itself is tested in ``test_sandbox.py``.
"""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentwaves.agents.tools import PathRefused, WorktreeTools, confine
from agentwaves.sandbox.bwrap import NoSandbox

GIT_SKIP = {"index", "logs", "ORIG_HEAD", "FETCH_HEAD", "COMMIT_EDITMSG", "description"}


def fingerprint(*roots: Path) -> str:
    """A hash of every file, symlink and directory under ``roots``, skipping git's volatile files."""
    digest = hashlib.sha256()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in GIT_SKIP)
            for name in sorted(filenames + [d for d in dirnames if os.path.islink(Path(dirpath, d))]):
                path = Path(dirpath, name)
                if name in GIT_SKIP:
                    continue
                digest.update(str(path).encode())
                if path.is_symlink():
                    digest.update(b"->" + os.readlink(path).encode())
                else:
                    digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class Setup:
    repo: Path
    wt: Path
    sentinel: Path
    tools: WorktreeTools

    def protected(self) -> str:
        checkout = [p for p in self.repo.iterdir() if p.name != ".git"]
        return fingerprint(self.sentinel, self.repo / ".git", *checkout)


@pytest.fixture
def setup(make_repo: Callable[..., Path], tmp_path: Path) -> Iterator[Setup]:
    repo = make_repo({"README.md": "# demo\n", "src/app.py": "def add(a, b):\n    return a + b\n"})
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 0\n")
    wt = tmp_path / "wt"
    subprocess.run(["git", "worktree", "add", "-q", "-b", "task", str(wt)], cwd=repo, check=True)
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "secret.txt").write_text("outside-canary-7731\n")
    s = Setup(repo, wt, sentinel, WorktreeTools(wt, sandbox=NoSandbox(), run_timeout=20))
    before = s.protected()
    yield s
    s.tools.close()
    assert s.protected() == before, "something outside the worktree changed"


def call(s: Setup, name: str, **kwargs: object) -> tuple[str, bool]:
    out = s.tools.execute(name, kwargs)
    return out.content, out.is_error


# ----------------------------------------------------------------------------------- confinement


@pytest.mark.parametrize("path", ["../sentinel/secret.txt", "../../etc/passwd", "src/../../sentinel/x"])
def test_dotdot_escapes_refused(setup: Setup, path: str) -> None:
    for name, extra in (("read_file", {}), ("write_file", {"content": "x"})):
        text, err = call(setup, name, path=path, **extra)
        assert err and "'..' is not allowed" in text
        assert "outside-canary" not in text
    assert not (setup.sentinel / "x").exists()


def test_absolute_paths_refused(setup: Setup) -> None:
    target = setup.sentinel / "new.txt"
    for path in ("/etc/passwd", str(target), str(setup.wt / "README.md")):
        text, err = call(setup, "read_file", path=path)
        assert err and "absolute paths are not allowed" in text
    text, err = call(setup, "write_file", path=str(target), content="pwned")
    assert err and not target.exists()


@pytest.mark.parametrize("path", [".git", ".git/hooks/pre-commit", "src/.git/config", ".GIT/HEAD"])
def test_git_paths_refused(setup: Setup, path: str) -> None:
    dotgit_before = (setup.wt / ".git").read_text()
    for name, extra in (
        ("read_file", {}),
        ("write_file", {"content": "evil"}),
        ("edit_file", {"old": "a", "new": "b"}),
    ):
        text, err = call(setup, name, path=path, **extra)
        assert err and ".git is off limits" in text, text
    assert (setup.wt / ".git").read_text() == dotgit_before
    assert not (setup.wt / "src" / ".git").exists()


def test_symlinks_to_outside_made_by_the_test(setup: Setup) -> None:
    (setup.wt / "outdir").symlink_to(setup.sentinel)
    (setup.wt / "outfile").symlink_to(setup.sentinel / "secret.txt")
    (setup.wt / "passwd").symlink_to("/etc/passwd")
    for path in ("outdir/secret.txt", "outfile", "passwd", "outdir"):
        text, err = call(setup, "read_file", path=path)
        assert err and "resolves outside the worktree" in text and "canary" not in text
    for path in ("outdir/new.txt", "outfile", "outdir/deeper/new.txt"):
        text, err = call(setup, "write_file", path=path, content="pwned")
        assert err and "outside" in text
        text, err = call(setup, "edit_file", path=path, old="canary", new="pwned")
        assert err
    assert sorted(p.name for p in setup.sentinel.iterdir()) == ["secret.txt"]


def test_symlinks_to_outside_made_by_run(setup: Setup) -> None:
    text, err = call(
        setup,
        "run",
        command=f"ln -s {setup.sentinel}/secret.txt leak && ln -s /etc/passwd pw"
        " && ln -s ../sentinel up && mkdir -p a && ln -s ../../sentinel a/b",
    )
    assert not err, text
    for path in ("leak", "pw", "up/secret.txt", "a/b/secret.txt"):
        text, err = call(setup, "read_file", path=path)
        assert err and "outside" in text and "canary" not in text and "root:" not in text
    for path in ("leak", "up/new.txt", "a/b/x/y.txt"):
        text, err = call(setup, "write_file", path=path, content="pwned")
        assert err and "outside" in text
    text, err = call(setup, "edit_file", path="leak", old="canary", new="pwned")
    assert err
    assert setup.tools.written == set()


def test_symlink_into_git_refused(setup: Setup) -> None:
    (setup.wt / "g").symlink_to(".git")
    (setup.wt / "hooks").symlink_to(setup.repo / ".git" / "hooks")
    for path in ("g", "hooks/pre-commit"):
        text, err = call(setup, "read_file", path=path)
        assert err, text
    text, err = call(setup, "write_file", path="hooks/pre-commit", content="#!/bin/sh\nrm -rf /\n")
    assert err and "outside" in text


def test_main_checkout_git_dir_is_off_limits(make_repo: Callable[..., Path]) -> None:
    repo = make_repo(name="plain")
    (repo / "cfg").symlink_to(".git/config")
    tools = WorktreeTools(repo, sandbox=NoSandbox())
    out = tools.execute("read_file", {"path": "cfg"})
    assert out.is_error and "resolves into .git" in out.content
    listing = tools.execute("list_files", {}).content
    assert ".git/" not in listing and "README.md" in listing


def test_inside_symlinks_read_but_never_written_through(setup: Setup) -> None:
    (setup.wt / "alias.py").symlink_to("src/app.py")
    text, err = call(setup, "read_file", path="alias.py")
    assert not err and "def add" in text
    text, err = call(setup, "write_file", path="alias.py", content="x = 1\n")
    assert err and "symbolic link" in text
    text, err = call(setup, "edit_file", path="alias.py", old="a + b", new="a - b")
    assert err and "symbolic link" in text
    assert "a + b" in (setup.wt / "src" / "app.py").read_text()


def test_confine_is_the_gate(setup: Setup) -> None:
    assert confine(setup.wt, "src/app.py") == setup.wt.resolve() / "src" / "app.py"
    assert confine(setup.wt, "new/dir/file.txt", write=True) == setup.wt.resolve() / "new/dir/file.txt"
    for bad in ("", "/abs", "../x", "a/../../x", ".git/config", "x\0y"):
        with pytest.raises(PathRefused):
            confine(setup.wt, bad)


def test_fifo_and_directories_are_not_read(setup: Setup) -> None:
    os.mkfifo(setup.wt / "pipe")
    start = time.monotonic()
    text, err = call(setup, "read_file", path="pipe")
    assert err and "not a regular file" in text and time.monotonic() - start < 2
    text, err = call(setup, "write_file", path="pipe", content="x")
    assert err and "not a regular file" in text
    text, err = call(setup, "read_file", path="src")
    assert err


# ----------------------------------------------------------------------------------- file tools


def test_write_edit_read_and_written(setup: Setup) -> None:
    text, err = call(setup, "write_file", path="pkg/new/mod.py", content="VALUE = 1\n")
    assert not err, text
    assert (setup.wt / "pkg/new/mod.py").read_text() == "VALUE = 1\n"
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(setup.wt / "pkg/new/mod.py").st_mode & 0o777 == 0o666 & ~umask
    os.chmod(setup.wt / "src/app.py", 0o755)
    text, err = call(setup, "edit_file", path="src/app.py", old="a + b", new="b + a")
    assert not err, text
    assert "b + a" in call(setup, "read_file", path="src/app.py")[0]
    assert os.stat(setup.wt / "src/app.py").st_mode & 0o777 == 0o755
    assert setup.tools.written == {"pkg/new/mod.py", "src/app.py"}
    assert not [p for p in (setup.wt / "pkg/new").iterdir() if "tmp" in p.name]


def test_edit_file_must_match_exactly_once(setup: Setup) -> None:
    (setup.wt / "twice.txt").write_text("x = 1\nx = 1\n")
    text, err = call(setup, "edit_file", path="twice.txt", old="x = 1", new="x = 2")
    assert err and "matched 2 times" in text
    text, err = call(setup, "edit_file", path="twice.txt", old="y = 1", new="x = 2")
    assert err and "matched 0 times" in text
    assert (setup.wt / "twice.txt").read_text() == "x = 1\nx = 1\n"
    text, err = call(setup, "edit_file", path="missing.txt", old="a", new="b")
    assert err and "missing.txt" in text
    assert setup.tools.written == set()


def test_size_caps(setup: Setup) -> None:
    tools = WorktreeTools(setup.wt, sandbox=NoSandbox(), max_file_bytes=1000, max_output=100)
    out = tools.execute("write_file", {"path": "big.txt", "content": "x" * 1001})
    assert out.is_error and not (setup.wt / "big.txt").exists()
    (setup.wt / "big.txt").write_text("y" * 2000)
    assert tools.execute("read_file", {"path": "big.txt"}).is_error
    (setup.wt / "mid.txt").write_text("z" * 500)
    out = tools.execute("read_file", {"path": "mid.txt"})
    assert not out.is_error and out.content.startswith("z" * 100) and "400 more characters" in out.content
    (setup.wt / "bin.dat").write_bytes(b"\0\1\2")
    assert "binary" in tools.execute("read_file", {"path": "bin.dat"}).content


def test_list_files(setup: Setup) -> None:
    (setup.wt / "outdir").symlink_to(setup.sentinel)
    (setup.wt / "src" / "test_app.py").write_text("")
    text, err = call(setup, "list_files")
    assert not err
    lines = text.splitlines()
    assert {"README.md", "src/app.py", "src/test_app.py", "outdir"} <= set(lines)
    assert not [line for line in lines if ".git" in line or "secret" in line]
    assert call(setup, "list_files", pattern="*.py")[0].splitlines() == ["src/app.py", "src/test_app.py"]
    assert call(setup, "list_files", pattern="src/test_*.py")[0] == "src/test_app.py"
    assert call(setup, "list_files", pattern="**/app.py")[0] == "src/app.py"
    assert call(setup, "list_files", path="src", pattern="app.py")[0] == "src/app.py"
    for path in ("..", "outdir", "/", ".git"):
        text, err = call(setup, "list_files", path=path)
        assert err and "secret" not in text, (path, text)


def test_list_files_is_bounded(setup: Setup) -> None:
    many = setup.wt / "many"
    many.mkdir()
    for i in range(1100):
        (many / f"f{i:04}.txt").write_text("")
    text, _ = call(setup, "list_files", path="many")
    assert len(text.splitlines()) == 1001 and "more files not shown" in text


def test_search(setup: Setup) -> None:
    (setup.wt / "outdir").symlink_to(setup.sentinel)
    (setup.wt / "leak.txt").symlink_to(setup.sentinel / "secret.txt")
    (setup.wt / "notes.txt").write_text("first\nreturn value\n")
    text, err = call(setup, "search", pattern=r"return \w")
    assert not err
    assert set(text.splitlines()) == {"src/app.py:2:     return a + b", "notes.txt:2: return value"}
    assert call(setup, "search", pattern="canary")[0] == "no matches"
    assert call(setup, "search", pattern="gitdir")[0] == "no matches"
    assert call(setup, "search", pattern="return", path="src/app.py")[0] == "src/app.py:2:     return a + b"
    for path in ("..", "outdir", "leak.txt", ".git"):
        text, err = call(setup, "search", pattern="canary", path=path)
        assert err and "canary" not in text, (path, text)
    text, err = call(setup, "search", pattern="(unclosed")
    assert err and "invalid regular expression" in text


def test_search_is_bounded(setup: Setup) -> None:
    (setup.wt / "hits.txt").write_text("hit\n" * 500)
    text, _ = call(setup, "search", pattern="hit")
    assert len(text.splitlines()) == 201 and "more matches not shown" in text


def test_search_with_a_backtracking_pattern_times_out_instead_of_hanging(setup: Setup) -> None:
    """``(a+)+$`` on a long run of a's followed by another letter takes exponential time in ``re``."""
    (setup.wt / "aaa.txt").write_text("a" * 40 + "b\n")
    os.mkfifo(setup.wt / "pipe")  # a FIFO is skipped, not opened and waited on
    tools = WorktreeTools(setup.wt, sandbox=NoSandbox(), search_timeout=1.0)
    started = time.monotonic()
    out = tools.execute("search", {"pattern": "(a+)+$"})
    assert out.is_error and "more than 1 s" in out.content and "simplify" in out.content
    assert time.monotonic() - started < 10
    assert tools.execute("search", {"pattern": "^a+b$"}).content == "aaa.txt:1: " + "a" * 40 + "b"


# ----------------------------------------------------------------------------------- schemas, finish


@pytest.mark.parametrize(
    ("name", "payload", "expected"),
    [
        ("read_file", {}, "missing required field(s) path"),
        ("read_file", {"path": "README.md", "offset": 3}, "unexpected field(s) offset"),
        ("read_file", {"path": 3}, "field path must be a string"),
        ("write_file", {"path": "a.txt"}, "missing required field(s) content"),
        ("edit_file", {"path": "a", "old": None, "new": "b"}, "field old must be a string"),
        ("run", {"command": "true", "timeout": "5"}, "field timeout must be a number"),
        ("run", {"command": "true", "timeout": True}, "field timeout must be a number"),
        ("run", {"command": "true", "timeout": -1}, "timeout must be a positive number"),
        ("finish", {"notes": "x"}, "missing required field(s) summary"),
        ("list_files", {"path": ["src"]}, "field path must be a string"),
    ],
)
def test_schema_errors(setup: Setup, name: str, payload: dict[str, object], expected: str) -> None:
    out = setup.tools.execute(name, payload)
    assert out.is_error and expected in out.content and not out.finished
    assert not (setup.wt / "a.txt").exists()


def test_unknown_tool_and_non_object_input(setup: Setup) -> None:
    out = setup.tools.execute("delete_everything", {"path": "."})
    assert out.is_error and "unknown tool 'delete_everything'" in out.content
    out = setup.tools.execute("read_file", ["README.md"])  # type: ignore[arg-type]
    assert out.is_error and "JSON object" in out.content


def test_specs_match_the_tools(setup: Setup) -> None:
    specs = {s.name: s for s in setup.tools.specs()}
    assert list(specs) == ["read_file", "write_file", "edit_file", "list_files", "search", "run", "finish"]
    assert specs["edit_file"].input_schema["required"] == ["path", "old", "new"]
    assert specs["list_files"].input_schema["required"] == []
    assert specs["run"].input_schema["properties"]["timeout"]["type"] == "number"
    assert all(
        s.input_schema["additionalProperties"] is False and len(s.description) > 40 for s in specs.values()
    )


def test_finish(setup: Setup) -> None:
    out = setup.tools.execute("finish", {"summary": " Added tests. ", "notes": "none"})
    assert out.finished and out.summary == "Added tests." and out.notes == "none" and not out.is_error
    out = setup.tools.execute("finish", {"summary": "  "})
    assert out.is_error and not out.finished


# ----------------------------------------------------------------------------------- run


def test_run_and_changed_paths(setup: Setup) -> None:
    text, err = call(
        setup,
        "run",
        command="echo made > made.txt && rm README.md && git mv src/app.py src/main.py"
        " && echo out && echo err >&2 && pwd && exit 3",
    )
    assert err and text.startswith("exit code: 3") and "out\nerr\n" in text and str(setup.wt) in text
    call(setup, "write_file", path="w.txt", content="w")
    assert setup.tools.changed_paths() == {"made.txt", "README.md", "src/app.py", "src/main.py", "w.txt"}
    assert setup.tools.written == {"w.txt"}


def test_run_env_has_no_secrets(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-canary-123")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://canary-base")
    monkeypatch.setenv("MY_TOKEN", "x-token-canary")
    monkeypatch.setenv("DB_PASSWORD", "pw-canary")
    tools = WorktreeTools(
        setup.wt, sandbox=NoSandbox(), env={"AGENTWAVES_PORT": "8123", "GH_TOKEN": "gh-canary"}
    )
    text = tools.execute("run", {"command": "env; cat /proc/$$/environ | tr '\\0' '\\n'"}).content
    tools.close()
    assert "AGENTWAVES_PORT=8123" in text and "TERM=dumb" in text
    for canary in ("sk-canary-123", "MY_TOKEN", "x-token-canary", "pw-canary", "gh-canary", "canary-base"):
        assert canary not in text
    home = next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith("HOME="))
    assert home != os.environ["HOME"] and "agentwaves-home" in home


def test_run_stdin_is_empty(setup: Setup) -> None:
    start = time.monotonic()
    text, err = call(setup, "run", command="cat; read -r line; echo read=$?")
    assert not err and "read=1" in text and time.monotonic() - start < 5


def test_huge_output_is_capped_and_memory_bounded(setup: Setup) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    text, err = call(setup, "run", command="head -c 100000000 /dev/zero | tr '\\0' 'a'; echo done")
    elapsed = time.monotonic() - start
    assert err and elapsed < 10
    assert "printed too much output" in text and "output truncated" in text and "done" not in text
    assert len(text) < 31_000
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


def test_output_truncation_reports_the_cut(setup: Setup) -> None:
    tools = WorktreeTools(setup.wt, sandbox=NoSandbox(), max_output=1000)
    out = tools.execute("run", {"command": "seq 1 10000"})
    assert not out.is_error and out.content.startswith("exit code: 0\n1\n2\n")
    assert "output truncated: 47894 more bytes not shown" in out.content


def _survivors(marker: str) -> list[str]:
    done = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if "pgrep" not in line]


def test_timeout_kills_the_whole_tree(setup: Setup) -> None:
    marker = f"aw-marker-{uuid.uuid4().hex}"
    sleeper = f"python3 -c 'import time; time.sleep(1000)' {marker}"
    command = (
        f"{sleeper} & setsid {sleeper} >/dev/null 2>&1 & nohup {sleeper} >/dev/null 2>&1 & "
        f"(trap '' TERM HUP; {sleeper}) & {sleeper}"
    )
    start = time.monotonic()
    text, err = call(setup, "run", command=command, timeout=1.5)
    assert err and "timed out after 1.5s" in text
    assert time.monotonic() - start < 6
    assert _survivors(marker) == []


def test_background_processes_do_not_outlive_the_command(setup: Setup) -> None:
    marker = f"aw-marker-{uuid.uuid4().hex}"
    start = time.monotonic()
    text, err = call(
        setup, "run", command=f"python3 -c 'import time; time.sleep(1000)' {marker} & echo started"
    )
    assert not err and "started" in text and time.monotonic() - start < 5
    assert _survivors(marker) == []


def test_timeout_is_capped(setup: Setup) -> None:
    tools = WorktreeTools(setup.wt, sandbox=NoSandbox(), run_timeout=0.5, max_run_timeout=1.0)
    start = time.monotonic()
    assert "timed out after 0.5s" in tools.execute("run", {"command": "sleep 30"}).content
    assert "timed out after 1s" in tools.execute("run", {"command": "sleep 30", "timeout": 99}).content
    assert time.monotonic() - start < 8


def test_spawning_thousands_of_processes_is_contained(setup: Setup) -> None:
    marker = f"aw-marker-{uuid.uuid4().hex}"
    start = time.monotonic()
    _, err = call(
        setup, "run", command=f"for i in $(seq 2000); do exec -a {marker} sleep 600 & done; wait", timeout=3
    )
    assert err and time.monotonic() - start < 12
    assert _survivors(marker) == []


def test_fork_bomb_is_contained(setup: Setup) -> None:
    marker = f"aw-marker-{uuid.uuid4().hex}"
    start = time.monotonic()
    call(setup, "run", command=f"# {marker}\n:(){{ :|:& }};:", timeout=3)
    assert time.monotonic() - start < 15
    assert _survivors(marker) == []


def test_loopback_network_without_sandbox_works(setup: Setup) -> None:
    """The counterpart of the bwrap test: outside the sandbox the same probe connects."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        probe = (
            f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')"
        )
        text, err = call(setup, "run", command=f'python3 -c "{probe}"')
    assert not err and "connected" in text
