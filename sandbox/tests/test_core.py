import pytest

from notify import Message, Notifier
from notify.core import InAppChannel
from notify.templates import welcome


def test_in_app_channel_keeps_messages() -> None:
    channel = InAppChannel()
    notifier = Notifier()
    notifier.register(channel)
    assert notifier.notify(welcome("ada")) == ["in-app:1"]
    assert channel.inbox[0].subject == "Welcome"


def test_duplicate_channel_refused() -> None:
    notifier = Notifier()
    notifier.register(InAppChannel())
    with pytest.raises(ValueError):
        notifier.register(InAppChannel())


def test_no_channels() -> None:
    with pytest.raises(RuntimeError):
        Notifier().notify(Message("a", "b", "c"))
