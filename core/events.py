"""The one event bus of a process, and the events staff screens are sent."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from core.logs import log_failure
from core.relay import SCREENS, Relay, RelayUnavailable
from models import Conversation, Message
from models.views import conversation_view, message_view

log = logging.getLogger(__name__)


def conversation_event(
    conversation: Conversation,
    patient_name: str | None = None,
    change: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A conversation's new state; `change` is the transition that produced it, if any."""
    event = {"type": "conversation", "conversation": conversation_view(conversation, patient_name)}
    if change is not None:
        event["change"] = change
    return event


def message_event(message: Message, conversation: Conversation) -> dict[str, Any]:
    return {
        "type": "message",
        "message": message_view(message),
        "conversation": conversation_view(conversation),
    }


Listener = Callable[[dict[str, Any]], Awaitable[None]]
# What staff screens show; domain events (below) are for the process's own listeners.
SCREEN_EVENTS = frozenset({"message", "conversation", "presence", "action", "labels"})
# A conversation's people finished (`patient_id`, `conversation_ids`): the bot takes it back.
RESOLVED = "resolved"
# The bot asked for a person (`conversation_id`, `reason`, `priority`).
BOT_HANDOFF = "bot_handoff"


class EventBus:
    """What happened, announced once by the function that did it; whoever must react
    listens here — the staff screens, the bot's hand-back, the queue — so no writer calls
    its consumers. The process's entry module decides who listens (`processes/`). A
    listener that fails is logged and the others still hear the event."""

    def __init__(self) -> None:
        self._listeners: list[tuple[frozenset[str], Listener]] = []

    def listen(self, listener: Listener, types: frozenset[str]) -> None:
        self._listeners.append((types, listener))

    async def publish(self, event: dict[str, Any]) -> None:
        for types, listener in list(self._listeners):
            if event["type"] not in types:
                continue
            try:
                await listener(event)
            except Exception as exc:
                log_failure(log, exc, "a listener of %s events failed", event["type"])

    async def close(self) -> None:
        """Release what listeners hold (the forwarder's HTTP session)."""
        for _types, listener in self._listeners:
            if isinstance(listener, HttpForwarder):
                await listener.close()


def relayed(relay: Relay) -> Listener:
    """Production mode: screen events go through Redis to every web replica's Hub, this
    process's included (which therefore does not publish them to its Hub itself)."""

    async def publish(event: dict[str, Any]) -> None:
        try:
            await relay.publish(SCREENS, event)
        except RelayUnavailable as exc:
            log.warning("event push failed (%s); staff screens will resync", exc)

    return publish


class HttpForwarder:
    """Embedded default: forwards screen events from the one process without screens (the
    worker) to the one web process's `/internal/events`; a lost event is never lost data,
    since screens reload their state from the API when they reconnect."""

    def __init__(self, web_url: str, token: str) -> None:
        self._url = f"{web_url}/internal/events"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, event: dict[str, Any]) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        try:
            async with self._session.post(self._url, json=event, headers=self._headers) as resp:
                if resp.status != 204:
                    log.warning("event push refused: HTTP %s", resp.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("event push failed (%s); staff screens will resync", type(exc).__name__)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
