"""Recording stand-ins for the edges of a unit under test (never used by integration tests)."""

from __future__ import annotations

from typing import Any

from core.context import DeliveryFailed
from core.events import EventBus
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

    async def deliver(self, message: Message, identity: ChannelIdentity) -> str | None:
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
