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
    try:
        notifier.register(InAppChannel())
    except ValueError:
        return
    raise AssertionError("a second in-app channel was accepted")


def test_no_channels() -> None:
    try:
        Notifier().notify(Message("a", "b", "c"))
    except RuntimeError:
        return
    raise AssertionError("notify without channels did not raise")
