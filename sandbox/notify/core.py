"""Messages, channels and the dispatcher."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Message:
    recipient: str
    subject: str
    body: str


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> str: ...


@dataclass
class InAppChannel:
    """Keeps messages in memory, as an in-app inbox would."""

    name: str = "in-app"
    inbox: list[Message] = field(default_factory=list)

    def send(self, message: Message) -> str:
        self.inbox.append(message)
        return f"in-app:{len(self.inbox)}"


@dataclass
class Notifier:
    """Sends a message through every registered channel."""

    channels: list[Channel] = field(default_factory=list)

    def register(self, channel: Channel) -> None:
        if any(c.name == channel.name for c in self.channels):
            raise ValueError(f"channel {channel.name!r} is already registered")
        self.channels.append(channel)

    def notify(self, message: Message) -> list[str]:
        if not self.channels:
            raise RuntimeError("no channels registered")
        return [channel.send(message) for channel in self.channels]
