"""Message templates."""

from __future__ import annotations

from notify.core import Message


def welcome(recipient: str) -> Message:
    return Message(recipient=recipient, subject="Welcome", body=f"Hello {recipient}, welcome aboard.")
