"""The exceptions a user sees as one line on stderr. The CLI catches :class:`AgentwavesError` in one place."""

from __future__ import annotations


class AgentwavesError(Exception):
    """An error with a one-line message for the user and an exit code (2: bad input, 1: run failed)."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(AgentwavesError):
    """Bad input from the user: a malformed plan, an unknown run id, a path outside the repo."""

    exit_code = 2
