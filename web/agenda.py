"""The staff agenda: the day's appointments per doctor (page and JSON), a patient's
appointments, the appointment actions the agenda page offers, slot search for the
workspace's booking panel, and managers' blocks of a doctor's time.

Every route sits behind the staff login (see middlewares). Who may act on which patient's
appointments is core.access's to say: managers and admins on every one, an attendant on those
of patients whose open conversation is assigned to them (the workspace books and reschedules
through the conversation's reception actions, see handoff.transitions.reception). Reads of
patients' appointments and changes to blocks are audit-logged; appointment changes are
recorded by scheduling.appointments as appointment events with the staff member as actor.
What the agenda refuses (a `core.errors.ClinicError`) is answered by the error middleware.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from aiohttp import web

from core import access, audit
from core.audit import AuditAction
from core.errors import BadRequest, Forbidden, NotFound
from models import Appointment, Role, User, utcnow
from models.views import (
    appointment_view,
    block_view,
    doctor_view,
    message_view,
    slot_view,
)
from scheduling import appointments
from scheduling.agenda import (
    CLINIC_TZ,
    AgendaItem,
    DoctorDay,
    active_doctors,
    day_agenda,
    nearest_slots,
    patient_history,
    reminders_of,
    to_local,
)
from scheduling.reminders import reached_nowhere, send_now
from scheduling.when import DAY_END, DAY_START, PARTS, TimeWindow
from web.api import NotJson, read_json
from web.keys import CTX, bad_parameter, client_ip, current_user, id_from, query_id
from web.pages import STATIC

STAFF_CHANNEL = "staff"
PATIENT_APPOINTMENTS_LIMIT = 100
SLOTS_SHOWN = 8


def _item_view(item: AgendaItem) -> dict[str, Any]:
    view = appointment_view(
        item.appointment, patient_name=item.patient_name, reminders=item.reminders
    )
    return {**view, "call_patient": reached_nowhere(item.appointment, item.reminders)}


def _doctor_day_view(day: DoctorDay) -> dict[str, Any]:
    return {
        "doctor": doctor_view(day.doctor),
        "hours": [{"starts_at": s.isoformat(), "ends_at": e.isoformat()} for s, e in day.hours],
        "blocked": [block_view(b) for b in day.blocked],
        "appointments": [_item_view(i) for i in day.appointments],
        "free": [s.starts_at.isoformat() for s in day.free],
    }


async def agenda_page(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "agenda.html", headers={"Content-Type": "text/html"})


async def agenda_api(request: web.Request) -> web.Response:
    """GET /api/agenda?day=YYYY-MM-DD&doctor_id=N (day defaults to today, clinic time)."""
    try:
        day = date.fromisoformat(request.query.get("day") or to_local(utcnow()).date().isoformat())
    except ValueError:
        raise bad_parameter("day") from None
    doctor_id = query_id(request, "doctor_id")
    async with request.app[CTX].db.session() as session:
        days = await day_agenda(session, day=day, doctor_id=doctor_id, now=utcnow())
        await audit.record(
            session,
            current_user(request),
            AuditAction.READ_AGENDA,
            ip=client_ip(request),
            day=day.isoformat(),
            doctor_id=doctor_id,
        )
    return web.json_response(
        {"day": day.isoformat(), "doctors": [_doctor_day_view(d) for d in days]}
    )


def _not_yours(user: User) -> Forbidden:
    """An attendant is told why; anyone else is simply refused."""
    if access.is_attendant(user):
        return Forbidden("agenda.error.not_your_patient")
    return Forbidden()


async def patient_appointments(request: web.Request) -> web.Response:
    """GET /api/patients/{id}/appointments: newest first, with their reminders."""
    patient_id = int(request.match_info["id"])
    user = current_user(request)
    async with request.app[CTX].db.session() as session:
        patient = await session.get(User, patient_id)
        if patient is None or patient.role != Role.PATIENT:
            raise NotFound()
        # The triage rule: an attendant sees them once the patient's conversation is theirs.
        if not await access.sees_whole_history(session, user, patient_id):
            raise _not_yours(user)
        history = await patient_history(session, patient_id, limit=PATIENT_APPOINTMENTS_LIMIT)
        await audit.record(
            session,
            user,
            AuditAction.READ_APPOINTMENTS,
            patient_id=patient_id,
            ip=client_ip(request),
        )
    return web.json_response([_item_view(i) for i in history])


async def _appointment_to_act_on(request: web.Request) -> tuple[int, User]:
    """The appointment in the path and the staff member, once core.access lets them act on
    its patient's appointments."""
    appointment_id = int(request.match_info["id"])
    user = current_user(request)
    async with request.app[CTX].db.session() as session:
        appointment = await session.get(Appointment, appointment_id)
        if appointment is None:
            raise NotFound()
        if not await access.may_act_on_appointments_of(session, user, appointment.patient_id):
            raise _not_yours(user)
    return appointment_id, user


async def _reason(request: web.Request) -> str:
    if not request.can_read_body:
        return ""
    if request.content_type != "application/json":
        raise NotJson()
    body = await request.json()
    reason = body.get("reason", "") if isinstance(body, dict) else None
    if not isinstance(reason, str):
        raise BadRequest()
    return reason.strip()[:500]


async def confirm(request: web.Request) -> web.Response:
    appointment_id, user = await _appointment_to_act_on(request)
    appointment = await appointments.confirm(
        request.app[CTX].db, appointment_id, channel=STAFF_CHANNEL, actor_id=user.id
    )
    return web.json_response(appointment_view(appointment))


async def cancel(request: web.Request) -> web.Response:
    appointment_id, user = await _appointment_to_act_on(request)
    appointment = await appointments.cancel(
        request.app[CTX].db,
        appointment_id,
        channel=STAFF_CHANNEL,
        actor_id=user.id,
        reason=await _reason(request),
        notify_patient=True,
    )
    return web.json_response(appointment_view(appointment))


async def _record_attendance(request: web.Request, *, attended: bool) -> web.Response:
    appointment_id, user = await _appointment_to_act_on(request)
    appointment = await appointments.mark_attendance(
        request.app[CTX].db,
        appointment_id,
        attended=attended,
        actor_id=user.id,
        channel=STAFF_CHANNEL,
    )
    return web.json_response(appointment_view(appointment))


async def attended(request: web.Request) -> web.Response:
    return await _record_attendance(request, attended=True)


async def no_show(request: web.Request) -> web.Response:
    return await _record_attendance(request, attended=False)


async def remind(request: web.Request) -> web.Response:
    appointment_id, user = await _appointment_to_act_on(request)
    message = await send_now(request.app[CTX], appointment_id, actor_id=user.id)
    return web.json_response(
        {"appointment_id": appointment_id, "message": message_view(message)}, status=201
    )


async def doctors(request: web.Request) -> web.Response:
    """GET /api/agenda/doctors: who can be booked, by name, with their specialty."""
    async with request.app[CTX].db.session() as session:
        found = await active_doctors(session)
    return web.json_response([doctor_view(d) for d in found])


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


async def slots(request: web.Request) -> web.Response:
    """GET /api/slots?specialty_id=N|doctor_id=N&day=YYYY-MM-DD&period=manha|tarde|noite:
    the nearest free slots, by the same search the bot offers; `in_window` is false when
    the day or period has none and these are the next ones after it."""
    specialty_id, doctor_id = query_id(request, "specialty_id"), query_id(request, "doctor_id")
    if specialty_id is None and doctor_id is None:
        raise bad_parameter("specialty_id/doctor_id")
    period = request.query.get("period") or None
    if period is not None and period not in PARTS:
        raise bad_parameter("period")
    try:
        day = date.fromisoformat(request.query["day"]) if request.query.get("day") else None
    except ValueError:
        raise bad_parameter("day") from None
    async with request.app[CTX].db.session() as session:
        found, in_window = await nearest_slots(
            session,
            now=utcnow(),
            window=_window(day, period),
            specialty_id=specialty_id,
            doctor_id=doctor_id,
            limit=SLOTS_SHOWN,
        )
    return web.json_response({"in_window": in_window, "slots": [slot_view(s) for s in found]})


def _moment(body: dict[str, Any], key: str) -> datetime:
    """An ISO date-time from the body; one without an offset is clinic-local wall time (as
    a browser's datetime-local input gives it)."""
    try:
        moment = datetime.fromisoformat(str(body[key]))
    except (KeyError, ValueError):
        raise bad_parameter(key) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CLINIC_TZ)


def _manager(request: web.Request) -> User:
    user = current_user(request)
    if not access.is_manager(user):
        raise Forbidden()
    return user


async def block_time(request: web.Request) -> web.Response:
    """POST /api/agenda/exceptions {doctor_id, starts_at, ends_at, reason} (managers): the
    doctor's time stops being offered; the appointments already in it are listed back."""
    user = _manager(request)
    body = await read_json(request)
    doctor_id = id_from(body.get("doctor_id"))
    if doctor_id is None:
        raise bad_parameter("doctor_id")
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise bad_parameter("reason")
    db = request.app[CTX].db
    blocked = await appointments.block_time(
        db,
        doctor_id=doctor_id,
        starts_at=_moment(body, "starts_at"),
        ends_at=_moment(body, "ends_at"),
        reason=reason,
    )
    exception = blocked.exception
    async with db.session() as session:
        await audit.record(
            session,
            user,
            AuditAction.BLOCK_TIME,
            ip=client_ip(request),
            doctor_id=doctor_id,
            block=exception.id,
        )
    return web.json_response(
        {
            "block": block_view(exception),
            "appointments": [
                appointment_view(a, patient_name=a.patient.name) for a in blocked.appointments
            ],
        },
        status=201,
    )


async def unblock_time(request: web.Request) -> web.Response:
    """DELETE /api/agenda/exceptions/{id} (managers): the time is offered again."""
    user = _manager(request)
    db = request.app[CTX].db
    try:
        exception = await appointments.unblock_time(db, int(request.match_info["id"]))
    except appointments.BlockNotFound:
        # The API's answer for a missing resource is the generic `error.not_found`.
        raise NotFound() from None
    async with db.session() as session:
        await audit.record(
            session,
            user,
            AuditAction.UNBLOCK_TIME,
            ip=client_ip(request),
            doctor_id=exception.doctor_id,
            block=exception.id,
        )
    return web.json_response({"id": exception.id})


async def notify_blocked(request: web.Request) -> web.Response:
    """POST /api/agenda/exceptions/{id}/notify (managers), "avisar e remarcar": each patient
    booked inside the block is told their appointment must change, once; the appointments
    are listed back with their notices (`reminders` of kind `blocked`)."""
    user = _manager(request)
    ctx = request.app[CTX]
    exception_id = int(request.match_info["id"])
    try:
        blocked = await appointments.notify_blocked(ctx.db, exception_id, actor_id=user.id)
    except appointments.BlockNotFound:
        raise NotFound() from None
    ids = [a.id for a in blocked.appointments]
    async with ctx.db.session() as session:
        notices = await reminders_of(session, ids)
        await audit.record(
            session,
            user,
            AuditAction.NOTIFY_BLOCKED,
            ip=client_ip(request),
            doctor_id=blocked.exception.doctor_id,
            block=exception_id,
            appointments=ids,
        )
    return web.json_response(
        {
            "block": block_view(blocked.exception),
            "appointments": [
                appointment_view(a, patient_name=a.patient.name, reminders=notices[a.id])
                for a in blocked.appointments
            ],
        }
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/staff/agenda", agenda_page)
    app.router.add_get("/api/agenda", agenda_api)
    app.router.add_get("/api/agenda/doctors", doctors)
    app.router.add_get("/api/slots", slots)
    app.router.add_post("/api/agenda/exceptions", block_time)
    app.router.add_delete(r"/api/agenda/exceptions/{id:\d+}", unblock_time)
    app.router.add_post(r"/api/agenda/exceptions/{id:\d+}/notify", notify_blocked)
    app.router.add_get(r"/api/patients/{id:\d+}/appointments", patient_appointments)
    for name, action in (
        ("confirm", confirm),
        ("cancel", cancel),
        ("remind", remind),
        ("attended", attended),
        ("no-show", no_show),
    ):
        app.router.add_post(rf"/api/appointments/{{id:\d+}}/{name}", action)
