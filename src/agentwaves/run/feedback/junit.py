"""Reading a gate's JUnit XML report, defensively: agents write the tests, so the file is hostile input.

Only the standard library's ``xml.etree`` is used, with the care ``defusedxml`` takes: the file is read
with a size cap, and a report with a DOCTYPE (the only way to declare entities, so to expand them) or
an ENTITY declaration is refused before parsing; no external resource is ever fetched (etree does not).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_REPORT_BYTES = 20 * 1024 * 1024
MAX_TESTS = 200_000
_DECL = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class JUnitError(ValueError):
    """The report is missing, too large, not XML, or declares a DOCTYPE/entities."""


@dataclass
class JUnitReport:
    tests: int = 0
    failing: set[str] = field(default_factory=set)  # "classname::name" of failed or errored tests


def read_junit(path: Path) -> JUnitReport:
    """Parse the report at ``path`` (never following a symlink); raise :class:`JUnitError` if unusable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise JUnitError(f"no readable JUnit report at {path.name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_REPORT_BYTES + 1)
    if len(data) > MAX_REPORT_BYTES:
        raise JUnitError(f"JUnit report {path.name} is larger than {MAX_REPORT_BYTES} bytes")
    return parse_junit(data)


def parse_junit(data: bytes) -> JUnitReport:
    import xml.etree.ElementTree as ET  # here, not at import: most runs read no report (start-up time)

    if _DECL.search(data):
        raise JUnitError("JUnit report declares a DOCTYPE or entities: refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise JUnitError(f"JUnit report is not valid XML: {exc}") from None
    report = JUnitReport()
    for case in root.iter("testcase"):
        report.tests += 1
        if report.tests > MAX_TESTS:
            raise JUnitError(f"JUnit report has more than {MAX_TESTS} test cases")
        name = f"{case.get('classname') or ''}::{case.get('name') or ''}"
        if any(child.tag in ("failure", "error") for child in case):
            report.failing.add(name)
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(f"not a JUnit report: root element <{root.tag[:40]}>")
    return report
