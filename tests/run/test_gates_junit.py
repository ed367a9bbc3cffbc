"""JUnit reports are hostile input: size cap, no DOCTYPE/entities, no symlinks; pytest gets --junitxml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentwaves.config import Config
from agentwaves.plan.model import Task
from agentwaves.run.feedback import junit
from agentwaves.run.feedback.gates import gate_command, junit_report

REPORT = b"""<?xml version="1.0"?>
<testsuites><testsuite name="s" tests="3">
<testcase classname="t.a" name="ok"/>
<testcase classname="t.a" name="bad"><failure message="x">boom</failure></testcase>
<testcase classname="t.b" name="err"><error message="y"/></testcase>
</testsuite></testsuites>"""


def test_failures_and_errors_are_failing() -> None:
    report = junit.parse_junit(REPORT)
    assert report.tests == 3 and report.failing == {"t.a::bad", "t.b::err"}


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><testsuite>&a;</testsuite>',
        b"<!doctype testsuite><testsuite/>",
        b"<testsuite><testcase",
        b"<html><testcase/></html>",
    ],
)
def test_hostile_or_broken_reports_are_refused(data: bytes) -> None:
    with pytest.raises(junit.JUnitError):
        junit.parse_junit(data)


def test_size_cap_and_symlinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(junit, "MAX_REPORT_BYTES", 100)
    big = tmp_path / "big.xml"
    big.write_bytes(b"<testsuite>" + b" " * 200 + b"</testsuite>")
    with pytest.raises(junit.JUnitError, match="larger than"):
        junit.read_junit(big)
    secret = tmp_path / "secret.xml"
    secret.write_bytes(b"<testsuite/>")
    link = tmp_path / "link.xml"
    os.symlink(secret, link)
    with pytest.raises(junit.JUnitError, match="no readable"):
        junit.read_junit(link)


def test_pytest_gates_get_a_report_others_do_not() -> None:
    config = Config(llm="fake")
    plain = Task(id="g", title="G", kind="gate", command="python3 -m pytest -q tests")
    assert gate_command(config, plain) == "python3 -m pytest -q tests --junitxml=.agentwaves-junit-g.xml"
    chained = Task(id="g", title="G", kind="gate", command="pytest -q && make lint")
    assert junit_report(config, chained) is None and gate_command(config, chained) == chained.command
    own = Task(id="g", title="G", kind="gate", command="pytest", gate_junit="out/r.xml")
    assert junit_report(config, own) == "out/r.xml" and gate_command(config, own) == "pytest"
    with pytest.raises(ValueError, match="relative path"):
        Task(id="g", title="G", kind="gate", command="x", gate_junit="../r.xml")
    with pytest.raises(ValueError, match="settings of gates"):
        Task(id="t", title="T", repair_attempts=2)
