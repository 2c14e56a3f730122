"""What the conversation service needs from the process it runs in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from handoff.bot_api import BotApi
from handoff.events import EventBus
from models import ChannelIdentity, Message
from models.db import Database
from settings import Settings


class DeliveryFailed(Exception):
    """A provider refused or could not take a message; `retryable` says whether to try again."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Sender(Protocol):
    """Delivers one recorded outbound message on its channel and returns the provider's id."""

    async def deliver(self, message: Message, identity: ChannelIdentity) -> str | None: ...


@dataclass
class Context:
    settings: Settings
    db: Database
    bus: EventBus
    senders: Mapping[str, Sender]
    bot: BotApi

    async def close(self) -> None:
        await self.bus.close()
        await self.bot.close()
        await self.db.dispose()
