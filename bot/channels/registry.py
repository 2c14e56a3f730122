"""The Sender of every channel, for whichever process needs to deliver messages."""

from __future__ import annotations

from bot.channels.webchat import Sockets, WebchatSender
from handoff.context import Sender
from settings import Settings


def build_senders(settings: Settings, *, in_bot_process: bool) -> dict[str, Sender]:
    """In the Rasa process the widget's sockets are local; elsewhere webchat delivery goes
    through the Rasa process."""
    return {
        "webchat": WebchatSender(
            Sockets() if in_bot_process else None, settings.bot_url, settings.internal_token
        ),
    }
