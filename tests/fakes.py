"""Recording stand-ins for the edges of a unit under test (never used by integration tests)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

from core.context import DeliveryFailed, Reach
from core.events import EventBus
from messaging.assistant import BotMessage
from models import ChannelIdentity, Message


class RecordingBus(EventBus):
    """The real bus, remembering every event published on it."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    async def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        await super().publish(event)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


class RecordingSender:
    def __init__(self, fail_with: str | None = None) -> None:
        self.delivered: list[tuple[Message, ChannelIdentity]] = []
        self.fail_with = fail_with

    async def deliver(
        self, message: Message, identity: ChannelIdentity, reach: Reach = Reach.FREE
    ) -> str | None:
        if self.fail_with:
            raise DeliveryFailed(self.fail_with)
        self.delivered.append((message, identity))
        return f"provider-{message.id}"

    @property
    def texts(self) -> list[str]:
        return [m.text for m, _ in self.delivered]


class RecordingBot:
    def __init__(self) -> None:
        self.hand_backs: list[tuple[int, str]] = []

    async def hand_back(self, ctx: Any, patient_id: int, intent: str) -> None:
        self.hand_backs.append((patient_id, intent))

    async def close(self) -> None:
        pass


@dataclass(frozen=True)
class Turn:
    """What reached the assistant: the patient (sender), what the bot reads, and the rest."""

    sender_id: str
    text: str
    metadata: dict[str, Any]
    channel: str
    replay: bool


class FakeAssistant:
    """Stands in for the assistant's connector: records what reached the bot and answers
    "eco: <text>" (with `buttons`, if set), as the real one returns the bot's messages."""

    def __init__(self) -> None:
        self.received: list[Turn] = []
        self.buttons: list[dict[str, str]] = []
        self.delay = 0.0  # seconds the bot "thinks" before it has understood the message
        self.down = 0  # how many of the next turns fail, as when the assistant is unreachable
        # The next turn reading one of these texts waits until its event is set (a replica
        # stuck mid-turn).
        self.stalls: dict[str, asyncio.Event] = {}
        self.in_flight: Counter[int] = Counter()  # turns of each patient running now
        self.most_in_flight: Counter[int] = Counter()  # and the most ever at once

    async def turn(
        self,
        patient_id: int,
        message: Message,
        text: str,
        *,
        answering: str | None = None,
        replay: bool = False,
        names: frozenset[str] = frozenset(),
    ) -> list[BotMessage]:
        self.in_flight[patient_id] += 1
        self.most_in_flight[patient_id] = max(
            self.most_in_flight[patient_id], self.in_flight[patient_id]
        )
        try:
            await asyncio.sleep(self.delay)
            if (stall := self.stalls.pop(text, None)) is not None:
                await stall.wait()
            if self.down:
                self.down -= 1
                raise ConnectionError("the assistant is down")
        finally:
            self.in_flight[patient_id] -= 1
        metadata = {"conversation_id": message.conversation_id, "message_id": message.id}
        self.received.append(Turn(str(patient_id), text, metadata, message.channel, replay))
        return [BotMessage(f"eco: {text}", list(self.buttons))]

    def texts_of(self, patient_id: int) -> list[str]:
        return [turn.text for turn in self.received if turn.sender_id == str(patient_id)]

    @property
    def texts(self) -> list[str]:
        return [turn.text for turn in self.received]
