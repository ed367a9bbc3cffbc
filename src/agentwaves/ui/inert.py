"""Agent text made inert before a person sees it: every terminal control character shown, none obeyed.

Summaries, notes, file names, diffs, tool output and errors are written by a model that may be
prompt-injected. Printed raw, an ``ESC`` sequence can write the clipboard (OSC 52), retitle the window, or
move the cursor and erase a warning from the screen; a lone carriage return or a bidi override hides text.
:func:`inert` replaces each C0 control (but newline and tab), DEL, each C1 control and each bidirectional
override with a visible escape such as ``\\x1b`` or ``\\u202e``; a carriage return before a newline stays.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """``text`` with every control character (but newline, tab and CRLF) replaced by a visible escape."""
    return _CONTROL.sub(_visible, text)


def inert_data(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with every string, keys included, made :func:`inert`."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, dict):
        return {inert(k) if isinstance(k, str) else k: inert_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [inert_data(v) for v in value]
    return value
