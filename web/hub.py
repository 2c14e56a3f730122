"""Fans live events out to the staff browsers connected to this web process, each seeing
only what their role allows."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

from core import access
from models import Role

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Subscriber:
    user_id: int
    role: Role
    ws: web.WebSocketResponse
    session_token: str  # the login the socket was opened with; it lives only while that does
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=1000)
    )
    # Why the server ends the socket; the socket's handler closes it with these.
    close_code: int = WSCloseCode.OK
    close_reason: str = ""

    @property
    def sees_everything(self) -> bool:
        """Managers and admins (core.access) supervise: every event reaches them."""
        return self.role in access.MANAGER_ROLES


def view_for(subscriber: Subscriber, event: dict[str, Any]) -> dict[str, Any] | None:
    """The event as this subscriber may see it, or None."""
    if subscriber.sees_everything or event["type"] == "presence":
        return event
    conversation = event.get("conversation")
    if conversation is None:
        return None
    if conversation["assigned_attendant_id"] == subscriber.user_id:
        return event
    if event["type"] == "conversation":
        if conversation["owner"] == "queued":
            return event
        # Left the queue or went to a colleague: just drop it from this attendant's screens.
        return {"type": "conversation_gone", "conversation_id": conversation["id"]}
    return None


class Hub:
    """The web process's EventBus: publish() queues the event for every allowed socket."""

    def __init__(self) -> None:
        self._subscribers: set[Subscriber] = set()

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def connected_user_ids(self) -> set[int]:
        return {subscriber.user_id for subscriber in self._subscribers}

    def subscribers(self) -> list[Subscriber]:
        return list(self._subscribers)

    async def disconnect(self, subscriber: Subscriber, code: int, reason: str) -> None:
        self.unsubscribe(subscriber)
        subscriber.close_code, subscriber.close_reason = code, reason
        # If the handler is reading, this only ends its loop; the handler then sends the
        # close frame with this code (aiohttp would otherwise close with its default one).
        await subscriber.ws.close(code=code, message=reason.encode())

    async def publish(self, event: dict[str, Any]) -> None:
        for subscriber in list(self._subscribers):
            view = view_for(subscriber, event)
            if view is None:
                continue
            try:
                subscriber.queue.put_nowait(view)
            except asyncio.QueueFull:
                log.warning(
                    "staff socket of user %s is not reading; closing it", subscriber.user_id
                )
                await self.disconnect(subscriber, WSCloseCode.OK, "not reading")

    async def pump(self, subscriber: Subscriber) -> None:
        """Write queued events to the socket until it closes."""
        while not subscriber.ws.closed:
            event = await subscriber.queue.get()
            await subscriber.ws.send_str(json.dumps(event, ensure_ascii=False))

    async def close(self) -> None:
        for subscriber in list(self._subscribers):
            await subscriber.ws.close()
        self._subscribers.clear()
