"""Secret redaction for everything agentwaves writes: logs, transcripts, events, state."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
SECRET_SHAPES = re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{20,}")
REDACTED = "[REDACTED]"


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) or (name.startswith("ANTHROPIC_") and name != "ANTHROPIC_BASE_URL")


class Redactor:
    """Replaces the values of secret-looking environment variables, and key-shaped strings, in text."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        source = os.environ if env is None else env
        values = {v for k, v in source.items() if is_secret_name(k) and len(v) >= 6}
        self._values = sorted(values, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return SECRET_SHAPES.sub(REDACTED, text)
