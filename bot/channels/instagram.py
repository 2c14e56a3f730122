"""Instagram Direct: the professional account's messages, through the Messenger Platform
(Facebook Login for Business: the Page-linked account, the same webhook and Send API).

Env: INSTAGRAM_VERIFY_TOKEN, INSTAGRAM_APP_SECRET, INSTAGRAM_ACCESS_TOKEN, META_GRAPH_URL.
"""

from __future__ import annotations

from typing import Any

from bot.channels.base import Event
from bot.channels.meta import MessagingInput, SendApiSender

CHANNEL = "instagram"
ENV = ("INSTAGRAM_VERIFY_TOKEN", "INSTAGRAM_APP_SECRET", "INSTAGRAM_ACCESS_TOKEN")


def parse(payload: dict[str, Any]) -> list[Event]:
    return InstagramInput.parse(payload)


class InstagramSender(SendApiSender):
    CHANNEL = CHANNEL
    TEXT_LIMIT = 1000


class InstagramInput(MessagingInput):
    CHANNEL = CHANNEL
    ENV = ENV
