"""What the conversation service needs from the process it runs in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from core.events import EventBus
from core.ratelimit import LocalLimits, RateLimits
from core.relay import Relay
from core.settings import Settings
from models import ChannelIdentity, Message
from models.db import Database


class DeliveryFailed(Exception):
    """A provider refused or could not take a message; `retryable` says whether to try again,
    `retry_after` how many seconds the provider asked to wait first, and `accepted` the ids
    of the parts of the message it took in this attempt before the failure."""

    def __init__(
        self, reason: str, *, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.accepted: list[str] = []


class Reach(StrEnum):
    """How a message may reach the patient now, given the channel's messaging window
    (decided in one place, `messaging.windows`): any message, only an approved template, or
    a person's reply tagged HUMAN_AGENT (Messenger, Instagram)."""

    FREE = "free"
    TEMPLATE = "template"
    HUMAN_AGENT = "human_agent"


class Sender(Protocol):
    """Delivers one recorded outbound message on its channel and returns the provider's id.

    `reach` says what the channel's window allows (a channel without one always gets FREE).
    A channel that sends a message in parts (long texts) skips the `message.parts_sent`
    parts the provider took in earlier attempts and returns the ids of the parts it sent now,
    in order (`channels.base.send_parts`)."""

    async def deliver(
        self, message: Message, identity: ChannelIdentity, reach: Reach = Reach.FREE
    ) -> str | Sequence[str] | None: ...


class AssistantUnavailable(RuntimeError):
    """The assistant did not answer (down, restarting, refused): the turn is tried again."""


class Bot(Protocol):
    """What the domain asks of the assistant (`messaging.assistant.Assistant`)."""

    async def hand_back(self, ctx: Context, patient_id: int, intent: str) -> None:
        """Resume the patient's dialogue after a person served them; the bot speaks first."""

    async def close(self) -> None: ...


@dataclass
class Context:
    settings: Settings
    db: Database
    bus: EventBus
    senders: Mapping[str, Sender]
    bot: Bot
    # Shared across replicas in production (`core.ratelimit.build_limits`).
    limits: RateLimits = field(default_factory=LocalLimits)
    # Pub/sub to the other processes' screens and widgets; None on the embedded default.
    relay: Relay | None = None

    async def close(self) -> None:
        await self.bus.close()
        await self.limits.close()
        if self.relay is not None:
            await self.relay.close()
        await self.bot.close()
        await self.db.dispose()
