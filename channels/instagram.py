"""Instagram Direct: the professional account's messages, through the Messenger Platform
(Facebook Login for Business: the Page-linked account, the same webhook and Send API).

Env: INSTAGRAM_VERIFY_TOKEN, INSTAGRAM_APP_SECRET, INSTAGRAM_ACCESS_TOKEN, META_GRAPH_URL.
"""

from __future__ import annotations

from typing import Any

from channels.base import Event
from channels.meta import MessagingChannel, parse_messaging

CHANNEL = "instagram"


def parse(payload: dict[str, Any]) -> list[Event]:
    return parse_messaging(payload, CHANNEL)


class InstagramChannel(MessagingChannel):
    name = CHANNEL
    ENV = ("INSTAGRAM_VERIFY_TOKEN", "INSTAGRAM_APP_SECRET", "INSTAGRAM_ACCESS_TOKEN")
    TEXT_LIMIT = 1000
