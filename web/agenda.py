"""The staff agenda: the day's appointments per doctor (page and JSON), a patient's
appointments, the appointment actions the agenda page offers, slot search for the
workspace's booking panel, and managers' blocks of a doctor's time.

Every route sits behind the staff login (see middlewares). Managers and admins act on every
appointment; an attendant only on those of patients whose open conversation is assigned to
them (the workspace books and reschedules through the conversation's reception actions, see
handoff.transitions). Reads of patients' appointments and changes to blocks are audit-logged;
appointment changes are recorded by scheduling.appointments as appointment events with the staff
member as actor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from accounts.auth import audit
from handoff.transitions import is_manager
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
from models.views import message_view
from scheduling import appointments
from scheduling.agenda import (
    CLINIC_TZ,
    Block,
    DoctorDay,
    Slot,
    active_doctors,
    day_agenda,
    nearest_slots,
    to_local,
)
from scheduling.reminders import ReminderNotSent, send_now
from scheduling.when import DAY_END, DAY_START, PARTS, TimeWindow
from web.api import read_json
from web.keys import CTX, current_user
from web.middlewares import ApiError
from web.pages import STATIC

STAFF_CHANNEL = "staff"
PATIENT_APPOINTMENTS_LIMIT = 100
SLOTS_SHOWN = 8


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


def block_view(block: Block) -> dict[str, Any]:
    """A block of the agenda; `id` is None for a national holiday (not removable)."""
    return {
        "id": block.id,
        "doctor_id": block.doctor_id,
        "starts_at": block.starts_at.isoformat(),
        "ends_at": block.ends_at.isoformat(),
        "reason": block.reason,
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
        "blocked": [block_view(b) for b in day.blocked],
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
        except appointments.AppointmentNotFound:
            raise ApiError(404, "error.not_found") from None
        except appointments.SchedulingError as refused:
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
    appointment = await appointments.confirm(
        request.app[CTX].db, appointment_id, channel=STAFF_CHANNEL, actor_id=user.id
    )
    return web.json_response(appointment_view(appointment))


async def _cancel(request: web.Request, appointment_id: int, user: User) -> web.Response:
    appointment = await appointments.cancel(
        request.app[CTX].db,
        appointment_id,
        channel=STAFF_CHANNEL,
        actor_id=user.id,
        reason=await _reason(request),
    )
    return web.json_response(appointment_view(appointment))


def _attendance(attended: bool) -> Act:
    async def record(request: web.Request, appointment_id: int, user: User) -> web.Response:
        appointment = await appointments.mark_attendance(
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


async def doctors(request: web.Request) -> web.Response:
    """GET /api/agenda/doctors: who can be booked, by name, with their specialty."""
    async with request.app[CTX].db.session() as session:
        found = await active_doctors(session)
    return web.json_response(
        [
            {
                "id": d.id,
                "name": d.name,
                "specialty_id": d.specialty_id,
                "specialty_name": d.specialty.name,
            }
            for d in found
        ]
    )


def _window(day: date | None, period: str | None) -> TimeWindow | None:
    """A clinic-local day, or part of one (manha, tarde, noite as the bot reads them); a
    part without a day is today's."""
    if day is None and period is None:
        return None
    day = day or to_local(utcnow()).date()
    start, end = PARTS[period] if period else (DAY_START, DAY_END)
    return TimeWindow(
        datetime.combine(day, start, CLINIC_TZ), datetime.combine(day, end, CLINIC_TZ)
    )


def _slot_view(slot: Slot) -> dict[str, Any]:
    return {
        "doctor_id": slot.doctor_id,
        "doctor_name": slot.doctor_name,
        "specialty_name": slot.specialty_name,
        "starts_at": slot.starts_at.isoformat(),
    }


async def slots(request: web.Request) -> web.Response:
    """GET /api/slots?specialty_id=N|doctor_id=N&day=YYYY-MM-DD&period=manha|tarde|noite:
    the nearest free slots, by the same search the bot offers; `in_window` is false when
    the day or period has none and these are the next ones after it."""
    specialty_id, doctor_id = _int_param(request, "specialty_id"), _int_param(request, "doctor_id")
    if specialty_id is None and doctor_id is None:
        raise ApiError(400, "agenda.error.bad_parameter", name="specialty_id/doctor_id")
    period = request.query.get("period") or None
    if period is not None and period not in PARTS:
        raise ApiError(400, "agenda.error.bad_parameter", name="period")
    try:
        day = date.fromisoformat(request.query["day"]) if request.query.get("day") else None
    except ValueError:
        raise ApiError(400, "agenda.error.bad_parameter", name="day") from None
    async with request.app[CTX].db.session() as session:
        found, in_window = await nearest_slots(
            session,
            now=utcnow(),
            window=_window(day, period),
            specialty_id=specialty_id,
            doctor_id=doctor_id,
            limit=SLOTS_SHOWN,
        )
    return web.json_response({"in_window": in_window, "slots": [_slot_view(s) for s in found]})


def _moment(body: dict[str, Any], key: str) -> datetime:
    """An ISO date-time from the body; one without an offset is clinic-local wall time (as
    a browser's datetime-local input gives it)."""
    try:
        moment = datetime.fromisoformat(str(body[key]))
    except (KeyError, ValueError):
        raise ApiError(400, "agenda.error.bad_parameter", name=key) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CLINIC_TZ)


def _require_manager(user: User) -> None:
    if not is_manager(user):
        raise ApiError(403, "error.forbidden")


async def block_time(request: web.Request) -> web.Response:
    """POST /api/agenda/exceptions {doctor_id, starts_at, ends_at, reason} (managers): the
    doctor's time stops being offered; the appointments already in it are listed back."""
    user = current_user(request)
    _require_manager(user)
    body = await read_json(request)
    doctor_id = body.get("doctor_id")
    if not isinstance(doctor_id, int) or isinstance(doctor_id, bool):
        raise ApiError(400, "agenda.error.bad_parameter", name="doctor_id")
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise ApiError(400, "agenda.error.bad_parameter", name="reason")
    db = request.app[CTX].db
    try:
        blocked = await appointments.block_time(
            db,
            doctor_id=doctor_id,
            starts_at=_moment(body, "starts_at"),
            ends_at=_moment(body, "ends_at"),
            reason=reason,
        )
    except appointments.InvalidBlock as refused:
        raise ApiError(400, refused.code) from None
    exception = blocked.exception
    async with db.session() as session:
        audit(
            session, user, "block_time", ip=request.remote, doctor_id=doctor_id, block=exception.id
        )
    block = Block(exception.id, doctor_id, exception.starts_at, exception.ends_at, exception.reason)
    return web.json_response(
        {
            "block": block_view(block),
            "appointments": [
                appointment_view(a, patient_name=a.patient.name) for a in blocked.appointments
            ],
        },
        status=201,
    )


async def unblock_time(request: web.Request) -> web.Response:
    """DELETE /api/agenda/exceptions/{id} (managers): the time is offered again."""
    user = current_user(request)
    _require_manager(user)
    db = request.app[CTX].db
    try:
        exception = await appointments.unblock_time(db, int(request.match_info["id"]))
    except appointments.BlockNotFound:
        raise ApiError(404, "error.not_found") from None
    async with db.session() as session:
        audit(
            session,
            user,
            "unblock_time",
            ip=request.remote,
            doctor_id=exception.doctor_id,
            block=exception.id,
        )
    return web.json_response({"id": exception.id})


def setup(app: web.Application) -> None:
    app.router.add_get("/staff/agenda", agenda_page)
    app.router.add_get("/api/agenda", agenda_api)
    app.router.add_get("/api/agenda/doctors", doctors)
    app.router.add_get("/api/slots", slots)
    app.router.add_post("/api/agenda/exceptions", block_time)
    app.router.add_delete(r"/api/agenda/exceptions/{id:\d+}", unblock_time)
    app.router.add_get(r"/api/patients/{id:\d+}/appointments", patient_appointments)
    for name, act in (
        ("confirm", _confirm),
        ("cancel", _cancel),
        ("remind", _remind),
        ("attended", _attendance(True)),
        ("no-show", _attendance(False)),
    ):
        app.router.add_post(rf"/api/appointments/{{id:\d+}}/{name}", _appointment_action(act))
