"""The one JSON shape of each entity, for the API, the staff screens' live events and the
widget: every view of a message, a conversation or a handoff event is built here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models.conversations import AttendantAction, Conversation, HandoffEvent, Message, Priority


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def message_view(message: Message) -> dict[str, Any]:
    """The JSON shape of a message for staff screens, the widget and push events."""
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "patient_id": message.patient_id,
        "channel": message.channel,
        "direction": str(message.direction),
        "author_kind": str(message.author_kind),
        "author_id": message.author_id,
        "text": message.text,
        "buttons": message.buttons or [],
        "attachments": message.attachments or [],
        "internal": message.internal,
        "delivery_status": str(message.delivery_status),
        "error": message.error,
        "created_at": message.created_at.isoformat(),
    }


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
