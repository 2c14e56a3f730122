"""Facebook Messenger: a Page's conversations, through the Messenger Platform webhook and Send API.

Env: MESSENGER_VERIFY_TOKEN, MESSENGER_APP_SECRET, MESSENGER_PAGE_ACCESS_TOKEN, META_GRAPH_URL.
"""

from __future__ import annotations

from typing import Any

from bot.channels.base import Event
from bot.channels.meta import MessagingInput, SendApiSender

CHANNEL = "messenger"
ENV = ("MESSENGER_VERIFY_TOKEN", "MESSENGER_APP_SECRET", "MESSENGER_PAGE_ACCESS_TOKEN")


def parse(payload: dict[str, Any]) -> list[Event]:
    return MessengerInput.parse(payload)


class MessengerSender(SendApiSender):
    CHANNEL = CHANNEL
    TEXT_LIMIT = 2000


class MessengerInput(MessagingInput):
    CHANNEL = CHANNEL
    ENV = ENV
