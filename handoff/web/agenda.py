"""The staff agenda: the day's appointments per doctor (page and JSON), a patient's
appointments, and the appointment actions the workspace offers.

Every route sits behind the staff login (see middlewares). Managers and admins act on every
appointment; an attendant only on those of patients whose open conversation is assigned to
them. Reads of patients' appointments are audit-logged; changes are recorded by
scheduling.actions as appointment events with the staff member as actor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from handoff.auth import audit
from handoff.history import message_view
from handoff.web.keys import CTX, current_user
from handoff.web.middlewares import ApiError
from handoff.web.pages import STATIC
from models import (
    Appointment,
    Conversation,
    ConversationStatus,
    Owner,
    Reminder,
    Role,
    User,
    utcnow,
)
from scheduling import actions
from scheduling.agenda import DoctorDay, day_agenda, to_local
from scheduling.reminders import ReminderNotSent, send_now

STAFF_CHANNEL = "staff"
PATIENT_APPOINTMENTS_LIMIT = 100


def reminder_view(reminder: Reminder) -> dict[str, Any]:
    return {
        "id": reminder.id,
        "offset_minutes": reminder.offset_minutes,
        "due_at": reminder.due_at.isoformat(),
        "status": str(reminder.status),
        "channel": reminder.channel,
        "sent_at": reminder.sent_at.isoformat() if reminder.sent_at else None,
        "error": reminder.error,
        "requested_by_id": reminder.requested_by_id,
    }


def appointment_view(
    appointment: Appointment,
    *,
    patient_name: str | None = None,
    reminders: tuple[Reminder, ...] | list[Reminder] = (),
) -> dict[str, Any]:
    """An appointment for staff screens (doctor and specialty must be loaded)."""
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


def _doctor_day_view(day: DoctorDay) -> dict[str, Any]:
    return {
        "doctor": {
            "id": day.doctor.id,
            "name": day.doctor.name,
            "specialty_name": day.doctor.specialty.name,
            "slot_minutes": day.doctor.slot_minutes,
        },
        "hours": [{"starts_at": s.isoformat(), "ends_at": e.isoformat()} for s, e in day.hours],
        "blocked": [
            {
                "starts_at": b.starts_at.isoformat(),
                "ends_at": b.ends_at.isoformat(),
                "reason": b.reason,
            }
            for b in day.blocked
        ],
        "appointments": [
            appointment_view(i.appointment, patient_name=i.patient_name, reminders=i.reminders)
            for i in day.appointments
        ],
        "free": [s.starts_at.isoformat() for s in day.free],
    }


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if not raw:
        return None
    if not raw.isdigit():
        raise ApiError(400, "agenda.error.bad_parameter", name=name)
    return int(raw)


async def agenda_page(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "agenda.html", headers={"Content-Type": "text/html"})


async def agenda_api(request: web.Request) -> web.Response:
    """GET /api/agenda?day=YYYY-MM-DD&doctor_id=N (day defaults to today, clinic time)."""
    try:
        day = date.fromisoformat(request.query.get("day") or to_local(utcnow()).date().isoformat())
    except ValueError:
        raise ApiError(400, "agenda.error.bad_parameter", name="day") from None
    doctor_id = _int_param(request, "doctor_id")
    async with request.app[CTX].db.session() as session:
        days = await day_agenda(session, day=day, doctor_id=doctor_id, now=utcnow())
        audit(
            session,
            current_user(request),
            "read_agenda",
            ip=request.remote,
            day=day.isoformat(),
            doctor_id=doctor_id,
        )
    return web.json_response(
        {"day": day.isoformat(), "doctors": [_doctor_day_view(d) for d in days]}
    )


async def _check_may_act(session: AsyncSession, user: User, patient_id: int) -> None:
    if user.role in (Role.MANAGER, Role.ADMIN):
        return
    if user.role != Role.ATTENDANT:
        raise ApiError(403, "error.forbidden")
    query = select(Conversation.id).where(
        Conversation.patient_id == patient_id,
        Conversation.assigned_attendant_id == user.id,
        Conversation.owner == Owner.ATTENDANT,
        Conversation.status == ConversationStatus.OPEN,
    )
    if (await session.execute(query.limit(1))).first() is None:
        raise ApiError(403, "agenda.error.not_your_patient")


async def patient_appointments(request: web.Request) -> web.Response:
    """GET /api/patients/{id}/appointments: newest first, with their reminders."""
    patient_id = int(request.match_info["id"])
    user = current_user(request)
    async with request.app[CTX].db.session() as session:
        patient = await session.get(User, patient_id)
        if patient is None or patient.role != Role.PATIENT:
            raise ApiError(404, "error.not_found")
        await _check_may_act(session, user, patient_id)
        query = (
            select(Appointment)
            .where(Appointment.patient_id == patient_id)
            .order_by(Appointment.starts_at.desc(), Appointment.id.desc())
            .limit(PATIENT_APPOINTMENTS_LIMIT)
            .options(selectinload(Appointment.doctor), selectinload(Appointment.specialty))
        )
        appointments = (await session.execute(query)).scalars().all()
        reminders: dict[int, list[Reminder]] = {a.id: [] for a in appointments}
        if appointments:
            rows = await session.execute(
                select(Reminder)
                .where(Reminder.appointment_id.in_(list(reminders)))
                .order_by(Reminder.due_at)
            )
            for reminder in rows.scalars():
                reminders[reminder.appointment_id].append(reminder)
        audit(session, user, "read_appointments", patient_id=patient_id, ip=request.remote)
    return web.json_response(
        [
            appointment_view(a, patient_name=patient.name, reminders=reminders[a.id])
            for a in appointments
        ]
    )


Act = Callable[[web.Request, int, User], Awaitable[web.Response]]


def _appointment_action(act: Act) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Checks the appointment exists and the staff member may act on its patient, then
    runs `act`, translating the agenda's refusals into pt-BR JSON errors."""

    async def handler(request: web.Request) -> web.Response:
        appointment_id = int(request.match_info["id"])
        user = current_user(request)
        async with request.app[CTX].db.session() as session:
            appointment = await session.get(Appointment, appointment_id)
            if appointment is None:
                raise ApiError(404, "error.not_found")
            await _check_may_act(session, user, appointment.patient_id)
        try:
            return await act(request, appointment_id, user)
        except actions.AppointmentNotFound:
            raise ApiError(404, "error.not_found") from None
        except actions.SchedulingError as refused:
            raise ApiError(409, refused.code) from None
        except ReminderNotSent as refused:
            raise ApiError(409, f"reminder.reason.{refused.reason}") from None

    return handler


async def _reason(request: web.Request) -> str:
    if not request.can_read_body:
        return ""
    if request.content_type != "application/json":
        raise ApiError(415, "error.invalid_json")
    body = await request.json()
    reason = body.get("reason", "") if isinstance(body, dict) else None
    if not isinstance(reason, str):
        raise ApiError(400, "error.invalid_json")
    return reason.strip()[:500]


async def _confirm(request: web.Request, appointment_id: int, user: User) -> web.Response:
    appointment = await actions.confirm(
        request.app[CTX].db, appointment_id, channel=STAFF_CHANNEL, actor_id=user.id
    )
    return web.json_response(appointment_view(appointment))


async def _cancel(request: web.Request, appointment_id: int, user: User) -> web.Response:
    appointment = await actions.cancel(
        request.app[CTX].db,
        appointment_id,
        channel=STAFF_CHANNEL,
        actor_id=user.id,
        reason=await _reason(request),
    )
    return web.json_response(appointment_view(appointment))


def _attendance(attended: bool) -> Act:
    async def record(request: web.Request, appointment_id: int, user: User) -> web.Response:
        appointment = await actions.mark_attendance(
            request.app[CTX].db,
            appointment_id,
            attended=attended,
            actor_id=user.id,
            channel=STAFF_CHANNEL,
        )
        return web.json_response(appointment_view(appointment))

    return record


async def _remind(request: web.Request, appointment_id: int, user: User) -> web.Response:
    message = await send_now(request.app[CTX], appointment_id, actor_id=user.id)
    return web.json_response(
        {"appointment_id": appointment_id, "message": message_view(message)}, status=201
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/staff/agenda", agenda_page)
    app.router.add_get("/api/agenda", agenda_api)
    app.router.add_get(r"/api/patients/{id:\d+}/appointments", patient_appointments)
    for name, act in (
        ("confirm", _confirm),
        ("cancel", _cancel),
        ("remind", _remind),
        ("attended", _attendance(True)),
        ("no-show", _attendance(False)),
    ):
        app.router.add_post(rf"/api/appointments/{{id:\d+}}/{name}", _appointment_action(act))
