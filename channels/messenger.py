"""Facebook Messenger: a Page's conversations, through the Messenger Platform webhook and Send API.

Env: MESSENGER_VERIFY_TOKEN, MESSENGER_APP_SECRET, MESSENGER_PAGE_ACCESS_TOKEN, META_GRAPH_URL.
"""

from __future__ import annotations

from typing import Any

from channels.base import Event
from channels.meta import MessagingChannel, parse_messaging

CHANNEL = "messenger"


def parse(payload: dict[str, Any]) -> list[Event]:
    return parse_messaging(payload, CHANNEL)


class MessengerChannel(MessagingChannel):
    name = CHANNEL
    ENV = ("MESSENGER_VERIFY_TOKEN", "MESSENGER_APP_SECRET", "MESSENGER_PAGE_ACCESS_TOKEN")
    TEXT_LIMIT = 2000
