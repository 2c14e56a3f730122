"""The reception's typed actions in a conversation (Confirmar consulta, Exames entregues...):
each one's effect on the patient's appointments, if any, through scheduling.appointments, and
its record in the conversation's timeline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.context import Context
from core.errors import BadRequest, NotFound
from core.events import conversation_event
from handoff.transitions.common import TransitionError, check_may_act, lock_conversation
from models import Appointment, AttendantAction, Conversation, User, utcnow
from models.views import action_view
from scheduling import appointments
from scheduling.reminders import ReminderNotSent, send_now

# Appointment changes made from the workspace are recorded with this channel.
STAFF_CHANNEL = "staff"


class UnknownAction(TransitionError, BadRequest):
    code = "error.unknown_action"


class BadSlot(TransitionError, BadRequest):
    """A booking action without a doctor and an aware ISO start (as slot search gives)."""

    code = "agenda.error.pick_a_slot"


class NotThePatientsAppointment(TransitionError, NotFound):
    """The appointment does not exist or is another patient's than the conversation's."""


class Refused(TransitionError):
    """The agenda refused the change an action asked for; the instance's `code` says why."""


# An action's effect outside the conversation (e.g. confirming the appointment); it returns
# details to keep with the recorded action.
ActionEffect = Callable[[Context, Conversation, User, dict[str, Any]], Awaitable[dict[str, Any]]]
# A change to one appointment, by its id.
AppointmentChange = Callable[[Context, int, User, dict[str, Any]], Awaitable[dict[str, Any]]]


async def _no_effect(
    _ctx: Context, _conversation: Conversation, _actor: User, _details: dict[str, Any]
) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ReceptionAction:
    effect: ActionEffect = _no_effect
    needs_appointment: bool = False
    # Needs a slot picked from slot search (`doctor_id`, `starts_at`): the workspace offers
    # it through its booking panel rather than as a plain button.
    needs_slot: bool = False


async def record_action(
    ctx: Context,
    conversation_id: int,
    actor: User,
    kind: str,
    details: dict[str, Any] | None = None,
) -> AttendantAction:
    """Perform a reception action (Confirmar consulta, Exames entregues...) and record it,
    typed, in the conversation's timeline."""
    action_type = ACTIONS.get(kind)
    details = dict(details or {})
    if action_type is None or (action_type.needs_appointment and "appointment_id" not in details):
        raise UnknownAction()
    async with ctx.db.session() as session:
        conversation = await lock_conversation(session, conversation_id)
        check_may_act(conversation, actor)
    details.update(await action_type.effect(ctx, conversation, actor, details))
    async with ctx.db.session() as session:
        action = AttendantAction(
            conversation_id=conversation.id,
            patient_id=conversation.patient_id,
            actor_id=actor.id,
            kind=kind,
            details=details,
            created_at=utcnow(),
        )
        session.add(action)
        await session.flush()
        patient = await session.get_one(User, conversation.patient_id)
        event = {
            "type": "action",
            "action": action_view(action),
            "conversation": conversation_event(conversation, patient.name)["conversation"],
        }
    await ctx.bus.publish(event)
    return action


# ---------------------------------------------------------------------------------------------
# Effects on the patient's appointments


def _on_appointment(change: AppointmentChange) -> ActionEffect:
    """An effect on one of the conversation's patient's appointments."""

    async def effect(
        ctx: Context, conversation: Conversation, actor: User, details: dict[str, Any]
    ) -> dict[str, Any]:
        appointment_id = details["appointment_id"]
        async with ctx.db.session() as session:
            appointment = await session.get(Appointment, appointment_id)
        if appointment is None or appointment.patient_id != conversation.patient_id:
            raise NotThePatientsAppointment()
        try:
            return await change(ctx, appointment_id, actor, details)
        except appointments.SchedulingError as refused:
            raise Refused(refused.code, **refused.values) from None
        except ReminderNotSent as refused:
            raise Refused(f"reminder.reason.{refused.reason}") from None

    return effect


async def _confirm(
    ctx: Context, appointment_id: int, actor: User, _: dict[str, Any]
) -> dict[str, Any]:
    appointment = await appointments.confirm(
        ctx.db, appointment_id, channel=STAFF_CHANNEL, actor_id=actor.id
    )
    return {"status": str(appointment.status)}


async def _cancel(
    ctx: Context, appointment_id: int, actor: User, details: dict[str, Any]
) -> dict[str, Any]:
    appointment = await appointments.cancel(
        ctx.db,
        appointment_id,
        channel=STAFF_CHANNEL,
        actor_id=actor.id,
        reason=details.get("note", ""),
        notify_patient=True,
    )
    return {"status": str(appointment.status)}


def _attendance(attended: bool) -> AppointmentChange:
    async def mark(
        ctx: Context, appointment_id: int, actor: User, _: dict[str, Any]
    ) -> dict[str, Any]:
        appointment = await appointments.mark_attendance(
            ctx.db, appointment_id, attended=attended, actor_id=actor.id, channel=STAFF_CHANNEL
        )
        return {"status": str(appointment.status)}

    return mark


async def _remind(
    ctx: Context, appointment_id: int, actor: User, _: dict[str, Any]
) -> dict[str, Any]:
    message = await send_now(ctx, appointment_id, actor_id=actor.id)
    return {"message_id": message.id, "channel": message.channel}


def _slot_of(details: dict[str, Any]) -> tuple[int, datetime]:
    doctor_id, starts_at = details.get("doctor_id"), details.get("starts_at")
    try:
        moment = datetime.fromisoformat(starts_at) if isinstance(starts_at, str) else None
    except ValueError:
        moment = None
    if not isinstance(doctor_id, int) or moment is None or moment.tzinfo is None:
        raise BadSlot()
    return doctor_id, moment


def _specialty_of(details: dict[str, Any]) -> int | None:
    """The specialty the slot was searched in (a doctor may serve several)."""
    specialty_id = details.get("specialty_id")
    return specialty_id if isinstance(specialty_id, int) else None


def _over_cap(details: dict[str, Any]) -> bool:
    """Staff confirmed booking beyond the patient's cap per specialty (audited)."""
    return details.get("over_cap") is True


def _booked(appointment: Appointment) -> dict[str, Any]:
    """What the timeline shows of a booking (the appointment's doctor must be loaded)."""
    return {
        "appointment_id": appointment.id,
        "doctor_id": appointment.doctor_id,
        "doctor_name": appointment.doctor.name,
        "starts_at": appointment.starts_at.isoformat(),
        "status": str(appointment.status),
    }


async def _book(
    ctx: Context, conversation: Conversation, actor: User, details: dict[str, Any]
) -> dict[str, Any]:
    """Book for the conversation's patient, as the bot and the portal do."""
    doctor_id, starts_at = _slot_of(details)
    try:
        appointment = await appointments.book(
            ctx.db,
            appointments.BookingRules.of(ctx.settings, ctx.limits),
            patient_id=conversation.patient_id,
            doctor_id=doctor_id,
            starts_at=starts_at,
            channel=STAFF_CHANNEL,
            self_service=False,
            actor_id=actor.id,
            over_cap=_over_cap(details),
            specialty_id=_specialty_of(details),
        )
    except appointments.SchedulingError as refused:
        raise Refused(refused.code, **refused.values) from None
    return _booked(appointment)


async def _reschedule(
    ctx: Context, appointment_id: int, actor: User, details: dict[str, Any]
) -> dict[str, Any]:
    doctor_id, starts_at = _slot_of(details)
    new = await appointments.reschedule(
        ctx.db,
        appointments.BookingRules.of(ctx.settings, ctx.limits),
        appointment_id,
        starts_at=starts_at,
        doctor_id=doctor_id,
        channel=STAFF_CHANNEL,
        self_service=False,
        actor_id=actor.id,
        over_cap=_over_cap(details),
        notify_patient=True,
    )
    return {**_booked(new), "appointment_id": appointment_id, "new_appointment_id": new.id}


def _appointment_action(change: AppointmentChange, *, needs_slot: bool = False) -> ReceptionAction:
    return ReceptionAction(_on_appointment(change), needs_appointment=True, needs_slot=needs_slot)


# The reception's buttons, by the typed kind stored in `attendant_actions.kind`.
ACTIONS: dict[str, ReceptionAction] = {
    "appointment_booked": ReceptionAction(_book, needs_slot=True),
    "appointment_rescheduled": _appointment_action(_reschedule, needs_slot=True),
    "appointment_confirmed": _appointment_action(_confirm),
    "reminder_sent": _appointment_action(_remind),
    "appointment_cancelled": _appointment_action(_cancel),
    "attended": _appointment_action(_attendance(True)),
    "no_show": _appointment_action(_attendance(False)),
    "exams_delivered": ReceptionAction(),
    "insurance_authorized": ReceptionAction(),
    "payment_received": ReceptionAction(),
    "documents_requested": ReceptionAction(),
}
