"""What ``agentwaves plan`` does around the planner: keep the previous plan, and find a default gate.

``.agentwaves/`` is git-ignored, so a hand-edited plan that ``plan`` overwrote would be gone for good:
:func:`keep_previous` rotates it to ``plan.yaml.1`` (newest first, up to :data:`KEEP` copies).
:func:`detect_test_command` finds the repository's obvious test command, which ``plan`` proposes as
the final gate when ``gate_command`` is not set.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tomllib
from configparser import ConfigParser, Error
from pathlib import Path

KEEP = 9


def keep_previous(path: Path, keep: int = KEEP) -> Path | None:
    """Move an existing ``path`` to ``path.1`` (``.1`` to ``.2`` …, the oldest beyond ``keep`` dropped);
    returns where the previous plan now is, or None when there was none."""
    if not path.is_file():
        return None
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"{path}.{keep}")
    for n in range(keep - 1, 0, -1):
        older = Path(f"{path}.{n}")
        if older.exists():
            os.replace(older, f"{path}.{n + 1}")
    first = Path(f"{path}.1")
    os.replace(path, first)
    return first


def _pytest_config(root: Path) -> str | None:
    if (root / "pytest.ini").is_file():
        return "pytest.ini"
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        if "pytest" in data.get("tool", {}):
            return "pyproject.toml [tool.pytest]"
    for name, section in (("setup.cfg", "tool:pytest"), ("tox.ini", "pytest")):
        parser = ConfigParser()
        with contextlib.suppress(OSError, Error, UnicodeDecodeError):
            parser.read(root / name, encoding="utf-8")
            if parser.has_section(section):
                return f"{name} [{section}]"
    if (root / "conftest.py").is_file():
        return "conftest.py"
    return None


def _npm_test(root: Path) -> bool:
    try:
        data = json.loads((root / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    script = (data.get("scripts") or {}).get("test") if isinstance(data, dict) else None
    return isinstance(script, str) and bool(script.strip()) and "no test specified" not in script


def _make_test(root: Path) -> str | None:
    for name in ("GNUmakefile", "makefile", "Makefile"):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = (root / name).read_text(encoding="utf-8")
            if re.search(r"^test\s*:(?!=)", text, re.MULTILINE):
                return name
    return None


def detect_test_command(root: Path) -> tuple[str, str] | None:
    """``(command, why)`` for the repository's obvious test command, or None. In order: a Makefile
    ``test`` target, pytest configuration, an ``npm test`` script, Cargo.toml, go.mod."""
    if makefile := _make_test(root):
        return "make test", f"{makefile} has a test target"
    if where := _pytest_config(root):
        return "python -m pytest -q", f"pytest is configured ({where})"
    if _npm_test(root):
        return "npm test", "package.json has a test script"
    if (root / "Cargo.toml").is_file():
        return "cargo test", "Cargo.toml"
    if (root / "go.mod").is_file():
        return "go test ./...", "go.mod"
    return None
