"""The one JSON shape of each entity, for the API, the staff screens' live events and the
widget: every view of a message, a conversation or a handoff event is built here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from models.conversations import (
    AttendantAction,
    AuditLog,
    Conversation,
    HandoffEvent,
    Message,
    Priority,
)
from models.people import User
from models.scheduling import Appointment, Doctor, Reminder, Specialty


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
        # A file's bytes never go to screens (an e-mail's, until stored; a generated .ics).
        "attachments": [
            {k: v for k, v in a.items() if k != "content"} if isinstance(a, dict) else a
            for a in message.attachments or []
        ],
        "internal": message.internal,
        # Files still being fetched from the provider (`messaging.files`).
        "files_pending": bool(message.files_pending),
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


# --- The agenda and the people ---------------------------------------------------------------


def specialty_view(specialty: Specialty) -> dict[str, Any]:
    return {"id": specialty.id, "name": specialty.name}


def doctor_view(doctor: Doctor) -> dict[str, Any]:
    """A doctor (specialties loaded), for the agenda's columns and the booking panel."""
    return {
        "id": doctor.id,
        "name": doctor.name,
        "specialties": [specialty_view(s) for s in doctor.specialties],
        "specialty_name": ", ".join(s.name for s in doctor.specialties),
        "slot_minutes": doctor.slot_minutes,
        "convenios": list(doctor.convenios),
    }


def reminder_view(reminder: Reminder) -> dict[str, Any]:
    return {
        "id": reminder.id,
        "kind": str(reminder.kind),
        "offset_minutes": reminder.offset_minutes,
        "due_at": reminder.due_at.isoformat(),
        "status": str(reminder.status),
        "channel": reminder.channel,
        "sent_at": _iso(reminder.sent_at),
        "error": reminder.error,
        "requested_by_id": reminder.requested_by_id,
    }


def appointment_view(
    appointment: Appointment,
    *,
    patient_name: str | None = None,
    reminders: Sequence[Reminder] = (),
) -> dict[str, Any]:
    """An appointment (doctor and specialty loaded), for staff screens and for the patient's
    own (portal, data export); `patient_name` and `reminders` are given where they are shown."""
    return {
        "id": appointment.id,
        "patient_id": appointment.patient_id,
        "patient_name": patient_name,
        "doctor_id": appointment.doctor_id,
        "doctor_name": appointment.doctor.name,
        "specialty_id": appointment.specialty_id,
        "specialty_name": appointment.specialty.name,
        "starts_at": appointment.starts_at.isoformat(),
        "ends_at": appointment.ends_at.isoformat(),
        "status": str(appointment.status),
        "rescheduled_from_id": appointment.rescheduled_from_id,
        "reminders": [reminder_view(r) for r in reminders],
    }


class SlotLike(Protocol):
    """What `scheduling.agenda.Slot` has (models import nothing above them)."""

    @property
    def doctor_id(self) -> int: ...
    @property
    def doctor_name(self) -> str: ...
    @property
    def specialty_id(self) -> int: ...
    @property
    def specialty_name(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...


def slot_view(slot: SlotLike) -> dict[str, Any]:
    """A free slot, as slot search offers it to staff and patients."""
    return {
        "doctor_id": slot.doctor_id,
        "doctor_name": slot.doctor_name,
        "specialty_id": slot.specialty_id,
        "specialty_name": slot.specialty_name,
        "starts_at": slot.starts_at.isoformat(),
    }


class BlockLike(Protocol):
    """What `scheduling.agenda.Block` and a stored `ScheduleException` have."""

    @property
    def id(self) -> int | None: ...
    @property
    def doctor_id(self) -> int | None: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def reason(self) -> str: ...


def block_view(block: BlockLike) -> dict[str, Any]:
    """A block of the agenda; `id` is None for a national holiday (not removable), and
    `doctor_id` None for one that blocks every doctor."""
    return {
        "id": block.id,
        "doctor_id": block.doctor_id,
        "starts_at": block.starts_at.isoformat(),
        "ends_at": block.ends_at.isoformat(),
        "reason": block.reason,
    }


def staff_view(user: User, *, audience: Literal["team", "self", "admin"]) -> dict[str, Any]:
    """A staff member (attendant profile loaded) with their presence and capacity. Colleagues
    (`team`) see no more; the person themselves (`self`) also their e-mail; the admin also
    whether the account is active."""
    profile = user.attendant_profile
    view: dict[str, Any] = {"id": user.id, "name": user.name}
    if audience != "team":
        view["email"] = user.email
    view |= {
        "role": str(user.role),
        "presence": str(profile.presence) if profile else None,
        "capacity": profile.capacity if profile else None,
    }
    if audience == "admin":
        view["is_active"] = user.is_active
    return view


def patient_view(patient: User) -> dict[str, Any]:
    """A patient's own data (patient profile loaded), as the portal shows it and the data
    export gives it. Staff see a masked card instead (CPF and phone are for the patient)."""
    profile = patient.patient_profile
    return {
        "id": patient.id,
        "name": patient.name,
        "email": patient.email,
        "phone": patient.phone_e164,
        "cpf": patient.cpf,
        "preferred_channel": profile.preferred_channel if profile else None,
        "lgpd_consent_at": _iso(profile.lgpd_consent_at) if profile else None,
    }


def audit_entry_view(
    entry: AuditLog, actor_name: str | None, patient_name: str | None
) -> dict[str, Any]:
    """An audit log entry as the admin's audit page lists it."""
    return {
        "id": entry.id,
        "created_at": entry.created_at.isoformat(),
        "actor_id": entry.actor_id,
        "actor_name": actor_name,
        "action": entry.action,
        "patient_id": entry.patient_id,
        "patient_name": patient_name,
        "conversation_id": entry.conversation_id,
        "ip": entry.ip,
        "details": entry.details,
    }
