"""The sandbox for ``run``: choosing one, and what bubblewrap really prevents, on a real repo and worktree.

The bubblewrap tests run hostile commands for real; they are skipped (with the reason) only when ``bwrap``
is missing or cannot start here. After each test the fixture checks that the sentinel folder next to the
repository, the repository's checkout and its ``.git`` are unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentwaves.agents.tools import WorktreeTools
from agentwaves.errors import UsageError
from agentwaves.sandbox.bwrap import (
    MISSING_BWRAP,
    BwrapSandbox,
    NoSandbox,
    Sandbox,
    probe_bwrap,
    resolve_sandbox,
)

BWRAP = shutil.which("bwrap")
needs_bwrap = pytest.mark.skipif(
    BWRAP is None or not probe_bwrap(BWRAP),
    reason="bubblewrap (bwrap) is not installed or cannot start a sandbox here (apt-get install bubblewrap)",
)
GIT_SKIP = {"index", "logs", "ORIG_HEAD", "FETCH_HEAD", "COMMIT_EDITMSG", "description"}


def fingerprint(*roots: Path) -> str:
    digest = hashlib.sha256()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in GIT_SKIP)
            for name in sorted(n for n in filenames if n not in GIT_SKIP):
                path = Path(dirpath, name)
                digest.update(str(path).encode())
                digest.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
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

    def run(self, command: str, timeout: float | None = None) -> tuple[str, bool]:
        payload: dict[str, object] = {"command": command}
        if timeout is not None:
            payload["timeout"] = timeout
        out = self.tools.execute("run", payload)
        return out.content, out.is_error


@pytest.fixture
def boxed(make_repo: Callable[..., Path], tmp_path: Path) -> Iterator[Setup]:
    """A worktree whose ``run`` goes through bubblewrap."""
    repo = make_repo({"README.md": "# demo\n", "tests/test_ok.py": "def test_ok():\n    assert True\n"})
    wt = tmp_path / "wt"
    subprocess.run(["git", "worktree", "add", "-q", "-b", "task", str(wt)], cwd=repo, check=True)
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "secret.txt").write_text("outside-canary-4411\n")
    tools = WorktreeTools(wt, sandbox=BwrapSandbox(), env={"AGENTWAVES_PORT": "8765"}, run_timeout=30)
    s = Setup(repo, wt, sentinel, tools)
    before = s.protected()
    yield s
    tools.close()
    assert s.protected() == before, "something outside the worktree changed"


def _survivors(marker: str) -> list[str]:
    done = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True)
    return done.stdout.splitlines()


# ----------------------------------------------------------------------------------- choosing


def test_resolve_none_warns() -> None:
    sandbox, warning = resolve_sandbox("none")
    assert isinstance(sandbox, NoSandbox) and sandbox.name == "none"
    assert warning is not None and warning.startswith("commands run without a sandbox: ")


def test_resolve_unknown_mode() -> None:
    with pytest.raises(UsageError, match="unknown sandbox mode 'docker'"):
        resolve_sandbox("docker")


def test_resolve_without_bwrap_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(UsageError) as info:
        resolve_sandbox("bwrap")
    assert str(info.value) == MISSING_BWRAP
    assert str(info.value) == (
        "bubblewrap (bwrap) is not installed: apt-get install bubblewrap, or use --sandbox none"
    )
    assert info.value.exit_code == 2
    sandbox, warning = resolve_sandbox("auto")
    assert isinstance(sandbox, NoSandbox)
    assert warning is not None and warning.startswith("commands run without a sandbox: ")
    assert "apt-get install bubblewrap" in warning


@needs_bwrap
def test_resolve_auto_and_bwrap_pick_bubblewrap() -> None:
    for mode in ("auto", "bwrap"):
        sandbox, warning = resolve_sandbox(mode)
        assert isinstance(sandbox, BwrapSandbox) and sandbox.name == "bwrap"
        assert isinstance(sandbox, Sandbox)
        if sandbox.user_namespace:
            assert warning is None
    assert probe_bwrap(BWRAP or "bwrap") is probe_bwrap(BWRAP or "bwrap")


@needs_bwrap
def test_wrap_arguments(tmp_path: Path) -> None:
    argv = BwrapSandbox().wrap(["bash", "-c", "true"], tmp_path)
    joined = " ".join(argv)
    for flag in (
        "--ro-bind / /",
        f"--bind {tmp_path} {tmp_path}",
        "--tmpfs /tmp",
        "--dev /dev",
        "--proc /proc",
        "--unshare-net",
        "--unshare-pid",
        "--die-with-parent",
        "--new-session",
        f"--chdir {tmp_path}",
    ):
        assert flag in joined
    assert argv[-4:] == ["--", "bash", "-c", "true"]
    assert joined.index("--tmpfs /tmp") < joined.index(f"--bind {tmp_path}")
    assert NoSandbox().wrap(["bash", "-c", "true"], tmp_path) == ["bash", "-c", "true"]


@needs_bwrap
def test_credentials_in_home_are_hidden(tmp_path: Path) -> None:
    home = Path(os.environ["HOME"])
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("private-key-canary")
    (home / ".netrc").write_text("machine x password netrc-canary")
    joined = " ".join(BwrapSandbox().wrap(["true"], tmp_path))
    assert f"--tmpfs {home}/.ssh" in joined and f"--ro-bind /dev/null {home}/.netrc" in joined
    assert joined.index(f"{home}/.ssh") < joined.index(f"--bind {tmp_path}")


# ----------------------------------------------------------------------------------- confinement


@needs_bwrap
def test_root_file_system_is_read_only(boxed: Setup) -> None:
    target = Path("/etc") / f"agentwaves-test-{uuid.uuid4().hex}"
    try:
        text, err = boxed.run(f"touch {target}")
        assert err and "Read-only file system" in text
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)
    text, err = boxed.run(f"echo pwned > {boxed.sentinel}/secret.txt; echo pwned > {boxed.sentinel}/new.txt")
    assert err


@needs_bwrap
def test_repository_git_dir_is_read_only(boxed: Setup) -> None:
    head = boxed.repo / ".git" / "HEAD"
    text, err = boxed.run(f"echo 'ref: refs/heads/pwned' > {head}")
    assert err and "Read-only file system" in text
    text, err = boxed.run(
        f"echo 'exit 1' > {boxed.repo}/.git/hooks/pre-commit; rm -rf {boxed.repo}/.git/refs"
    )
    assert err
    text, err = boxed.run("echo 'gitdir: /tmp/elsewhere' > .git")
    dotgit = (boxed.wt / ".git").read_text()
    assert err and dotgit.startswith("gitdir:") and "elsewhere" not in dotgit


@needs_bwrap
def test_git_reads_work_but_commits_fail(boxed: Setup) -> None:
    text, err = boxed.run("echo change >> README.md && git status --short && git diff --stat")
    assert not err and "M README.md" in text
    text, err = boxed.run("git -c user.name=a -c user.email=a@b commit -qam sneaky")
    assert err
    assert (
        subprocess.run(
            ["git", "log", "--oneline", "task"], cwd=boxed.repo, capture_output=True, text=True, check=True
        ).stdout.count("\n")
        == 1
    )


@needs_bwrap
def test_worktree_home_and_tools_work_inside(boxed: Setup) -> None:
    text, err = boxed.run(
        "mkdir -p pkg && echo 'x = 1' > pkg/mod.py && touch ~/.cache-test && "
        "python3 -c 'import sys; print(sys.version_info[0])' && python3 -m pytest -q tests"
    )
    assert not err, text
    assert (boxed.wt / "pkg" / "mod.py").read_text() == "x = 1\n"
    assert "1 passed" in text
    assert boxed.tools.changed_paths() == {"pkg/mod.py"}


@needs_bwrap
def test_tmp_is_private(boxed: Setup) -> None:
    host_file = Path("/tmp") / f"agentwaves-host-{uuid.uuid4().hex}"
    host_file.write_text("host")
    inner = f"/tmp/agentwaves-inner-{uuid.uuid4().hex}"
    try:
        text, _ = boxed.run(f"ls {host_file}; ls {boxed.sentinel}; echo inner > {inner} && cat {inner}")
        assert "inner" in text and "outside-canary" not in text
        assert text.count("No such file or directory") == 2
        assert not Path(inner).exists()
    finally:
        host_file.unlink()
        Path(inner).unlink(missing_ok=True)


@needs_bwrap
def test_no_network(boxed: Setup) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        probe = (
            f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')"
        )
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # works outside
        text, err = boxed.run(f'python3 -c "{probe}"')
    assert err and "connected" not in text and ("ConnectionRefused" in text or "unreachable" in text)


@needs_bwrap
def test_symlink_made_inside_is_refused_by_the_tools(boxed: Setup) -> None:
    text, err = boxed.run(f"ln -s /etc/passwd pw && ln -s {boxed.sentinel} out")
    assert not err, text
    for path in ("pw", "out/secret.txt"):
        out = boxed.tools.execute("read_file", {"path": path})
        assert out.is_error and "outside" in out.content
    assert boxed.tools.execute("write_file", {"path": "out/secret.txt", "content": "pwned"}).is_error


@needs_bwrap
def test_secrets_do_not_reach_the_sandbox(boxed: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-canary-123")
    monkeypatch.setenv("MY_TOKEN", "x")
    text, err = boxed.run("env")
    assert not err and "AGENTWAVES_PORT=8765" in text
    assert "sk-canary-123" not in text and "MY_TOKEN" not in text


@needs_bwrap
def test_user_namespace_uid(boxed: Setup) -> None:
    sandbox = boxed.tools.sandbox
    assert isinstance(sandbox, BwrapSandbox)
    if not sandbox.user_namespace:
        pytest.skip("user namespaces are unavailable here; bwrap runs without --unshare-user")
    text, _ = boxed.run("id -u; id -g")
    assert text.split("\n")[1:3] == ["65534", "65534"]


# ----------------------------------------------------------------------------------- processes


@needs_bwrap
def test_timeout_kills_everything_in_the_sandbox(boxed: Setup) -> None:
    marker = f"aw-marker-{uuid.uuid4().hex}"
    sleeper = f"python3 -c 'import time; time.sleep(1000)' {marker}"
    start = time.monotonic()
    text, err = boxed.run(f"{sleeper} & setsid {sleeper} >/dev/null 2>&1 & {sleeper}", timeout=1.5)
    assert err and "timed out" in text and time.monotonic() - start < 6
    assert _survivors(marker) == []


@needs_bwrap
def test_fork_bomb_in_the_sandbox_is_contained(boxed: Setup) -> None:
    marker = f"aw-marker-{uuid.uuid4().hex}"
    start = time.monotonic()
    boxed.run(f"# {marker}\n:(){{ :|:& }};:", timeout=3)
    boxed.run(f"for i in $(seq 2000); do exec -a {marker} sleep 600 & done; wait", timeout=3)
    assert time.monotonic() - start < 20
    assert _survivors(marker) == []


@needs_bwrap
def test_huge_output_in_the_sandbox(boxed: Setup) -> None:
    start = time.monotonic()
    text, err = boxed.run("yes | head -c 100000000")
    assert err and "printed too much output" in text and len(text) < 31_000
    assert time.monotonic() - start < 10


@needs_bwrap
def test_bwrap_without_user_namespace_still_confines(boxed: Setup) -> None:
    """The fallback when user namespaces are unavailable: same mounts, the caller's uid."""
    tools = WorktreeTools(boxed.wt, sandbox=BwrapSandbox(user_namespace=False))
    try:
        out = tools.execute("run", {"command": f"echo ok > inside.txt; echo pwned > {boxed.repo}/.git/x"})
        assert out.is_error and "Read-only file system" in out.content
        assert (boxed.wt / "inside.txt").read_text() == "ok\n"
        assert not (boxed.repo / ".git" / "x").exists()
    finally:
        tools.close()
