"""notify: send messages to users through channels."""

from notify.core import Message, Notifier

__all__ = ["Message", "Notifier"]
