"""Live events for staff screens: built here, fanned out by the web process's hub.

Processes other than the web app publish over HTTP to its internal endpoint; a lost event
is never lost data, since screens reload state from the API when they reconnect.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import aiohttp

from handoff.history import message_view
from models import AttendantAction, Conversation, HandoffEvent, Message, Priority

log = logging.getLogger(__name__)


class EventBus(Protocol):
    async def publish(self, event: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


def conversation_view(
    conversation: Conversation, patient_name: str | None = None
) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "patient_id": conversation.patient_id,
        "patient_name": patient_name,
        "channel": conversation.channel,
        "status": str(conversation.status),
        "owner": str(conversation.owner),
        "assigned_attendant_id": conversation.assigned_attendant_id,
        "priority": Priority(conversation.priority).name.lower(),
        "handoff_reason": conversation.handoff_reason,
        "opened_at": conversation.opened_at.isoformat(),
        "last_message_at": conversation.last_message_at.isoformat(),
        "handed_off_at": _iso(conversation.handed_off_at),
        "queued_at": _iso(conversation.queued_at),
        "assigned_at": _iso(conversation.assigned_at),
        "first_human_reply_at": _iso(conversation.first_human_reply_at),
        "resolved_at": _iso(conversation.resolved_at),
        "csat_score": conversation.csat_score,
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


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


def handoff_event_view(event: HandoffEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "conversation_id": event.conversation_id,
        "kind": event.kind,
        "actor_id": event.actor_id,
        "from_attendant_id": event.from_attendant_id,
        "to_attendant_id": event.to_attendant_id,
        "details": event.details or {},
        "created_at": event.created_at.isoformat(),
    }


def action_view(action: AttendantAction) -> dict[str, Any]:
    return {
        "id": action.id,
        "conversation_id": action.conversation_id,
        "kind": action.kind,
        "actor_id": action.actor_id,
        "details": action.details or {},
        "created_at": action.created_at.isoformat(),
    }


def message_event(message: Message, conversation: Conversation) -> dict[str, Any]:
    return {
        "type": "message",
        "message": message_view(message),
        "conversation": conversation_view(conversation),
    }


class HttpEventBus:
    """Publishes to the web process's `/internal/events`."""

    def __init__(self, web_url: str, token: str) -> None:
        self._url = f"{web_url}/internal/events"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    async def publish(self, event: dict[str, Any]) -> None:
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
