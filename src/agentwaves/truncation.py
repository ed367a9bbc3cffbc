"""The marker ``read_file`` puts after a file it cut, and the check that no write carries it back.

A model that writes back what ``read_file`` showed it would replace a long file with its first part and
this marker. :func:`truncated_write_problem` lets ``write_file`` refuse that content for every backend.
"""

from __future__ import annotations

import re

# read_file appends: "\n[PATH: N more characters not shown; use search or run (e.g. sed -n 'A,Bp' PATH)
# to read the rest]". Only a real count (digits) matches, not the f-string that produces it.
MARKER = re.compile(r"\[[^\n]*?: \d+ more characters not shown; use search or run \(e\.g\. sed -n ")


def has_truncation_marker(text: str) -> bool:
    """True if ``text`` contains the note ``read_file`` appends to a file it cut."""
    return MARKER.search(text) is not None


def truncated_write_problem(content: str, shown: str) -> str | None:
    """Why ``write_file`` must refuse ``content`` for ``shown`` (it holds the truncation marker), or None."""
    if not has_truncation_marker(content):
        return None
    return (
        f"refused: the content for {shown} contains read_file's truncation marker ('… more characters not "
        "shown'), so writing it would cut the file to the part that was shown; change the file with "
        "edit_file instead, or write its complete content"
    )
