"""The patient portal: "Meus dados" and where reminders go (consent, export and erasure are
in web/privacy.py), the patient's own appointments (upcoming and past; book, confirm,
reschedule, cancel, a calendar file) through the same scheduling functions as the bot and
staff, and "Histórico de mensagens", their conversations on every channel. Every read is of
the logged-in patient's own rows only.
What those refuse (a `core.errors.ClinicError`) is answered by the error middleware."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from accounts import patients
from core import access
from core.context import Context
from core.errors import NotFound
from models import (
    ACTIVE_APPOINTMENT_STATUSES,
    Appointment,
    ClinicProfile,
    Message,
    utcnow,
)
from models.views import appointment_view, patient_view, slot_view, specialty_view
from scheduling import appointments
from scheduling.agenda import CLINIC_TZ, find_slots, offered_specialties, patient_history
from scheduling.reminders import appointment_ics
from scheduling.when import TimeWindow
from web.api import read_json
from web.keys import CTX, bad_parameter, current_user, id_from, query_id
from web.pages import render_page

PORTAL_CHANNEL = "portal"
SLOTS_SHOWN = 8
PAST_SHOWN = 50
HISTORY_PAGE = 100


async def portal_page(_request: web.Request) -> web.Response:
    return render_page("portal.html")


async def _own_view(ctx: Context, patient_id: int) -> dict[str, Any]:
    patient = await patients.load_patient(ctx.db, patient_id)
    profile = patient.patient_profile
    return {
        **patient_view(patient),
        "phone_verified": patients.phone_proved(patient),
        "reminders_opt_in": profile.reminders_opt_in if profile else True,
        "reminder_channels": await patients.reminder_channels(ctx, patient_id),
    }


async def me(request: web.Request) -> web.Response:
    return web.json_response(await _own_view(request.app[CTX], current_user(request).id))


async def update_me(request: web.Request) -> web.Response:
    body = await read_json(request)
    ctx, patient_id = request.app[CTX], current_user(request).id
    await patients.update_contact(
        ctx.db, patient_id, name=body.get("name"), phone=body.get("phone")
    )
    if "preferred_channel" in body:
        await patients.set_preferred_channel(ctx, patient_id, body["preferred_channel"])
    return web.json_response(await _own_view(ctx, patient_id))


async def send_phone_code(request: web.Request) -> web.Response:
    """ "Confirmar telefone": a one-time code goes to the phone on record."""
    await patients.send_phone_code(request.app[CTX], current_user(request).id)
    return web.json_response({"sent": True}, status=202)


async def confirm_phone(request: web.Request) -> web.Response:
    body = await read_json(request)
    ctx, patient_id = request.app[CTX], current_user(request).id
    await patients.confirm_phone(ctx, patient_id, body.get("code"))
    return web.json_response(await _own_view(ctx, patient_id))


async def list_appointments(request: web.Request) -> web.Response:
    async with request.app[CTX].db.session() as session:
        upcoming = await appointments.upcoming_for_patient(
            session, current_user(request).id, now=utcnow()
        )
    return web.json_response([appointment_view(a) for a in upcoming])


async def specialties(request: web.Request) -> web.Response:
    async with request.app[CTX].db.session() as session:
        rows = await offered_specialties(session)
    return web.json_response([specialty_view(s) for s in rows])


def _day_window(raw: str | None) -> TimeWindow | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise bad_parameter("day") from None
    return TimeWindow(
        datetime.combine(day, time.min, CLINIC_TZ), datetime.combine(day, time.max, CLINIC_TZ)
    )


async def slots(request: web.Request) -> web.Response:
    specialty_id = id_from(request.query.get("specialty_id"))
    if specialty_id is None:
        raise bad_parameter("specialty_id")
    window = _day_window(request.query.get("day"))
    async with request.app[CTX].db.session() as session:
        found = await find_slots(
            session, now=utcnow(), window=window, specialty_id=specialty_id, limit=SLOTS_SHOWN
        )
    return web.json_response([slot_view(slot) for slot in found])


def _slot_in(body: dict[str, Any]) -> tuple[int, datetime]:
    """The (doctor id, start) of a slot as `/api/portal/slots` offers it."""
    try:
        starts_at = datetime.fromisoformat(str(body["starts_at"]))
    except (KeyError, ValueError):
        raise bad_parameter("starts_at") from None
    if (doctor_id := id_from(body.get("doctor_id"))) is None:
        raise bad_parameter("doctor_id")
    if starts_at.tzinfo is None:
        raise bad_parameter("starts_at")
    return doctor_id, starts_at


async def book(request: web.Request) -> web.Response:
    body = await read_json(request)
    doctor_id, starts_at = _slot_in(body)
    patient, ctx = current_user(request), request.app[CTX]
    appointment = await appointments.book(
        ctx.db,
        appointments.BookingRules.of(ctx.settings, ctx.limits),
        patient_id=patient.id,
        doctor_id=doctor_id,
        specialty_id=id_from(body.get("specialty_id")),
        starts_at=starts_at,
        channel=PORTAL_CHANNEL,
        self_service=True,
        actor_id=patient.id,
    )
    return web.json_response({"id": appointment.id}, status=201)


async def _own_appointment(request: web.Request) -> Appointment:
    """The appointment in the path, doctor and specialty loaded, if it is the logged-in
    patient's; someone else's is answered as a missing one (its id says nothing)."""
    appointment_id = int(request.match_info["id"])
    async with request.app[CTX].db.session() as session:
        query = (
            select(Appointment)
            .where(Appointment.id == appointment_id)
            .options(selectinload(Appointment.doctor), selectinload(Appointment.specialty))
        )
        appointment = (await session.execute(query)).scalar_one_or_none()
        if appointment is None or not await access.may_act_on_appointments_of(
            session, current_user(request), appointment.patient_id
        ):
            raise NotFound()
    return appointment


async def cancel(request: web.Request) -> web.Response:
    appointment, ctx = await _own_appointment(request), request.app[CTX]
    await appointments.cancel(
        ctx.db,
        appointment.id,
        channel=PORTAL_CHANNEL,
        actor_id=appointment.patient_id,
        paced_by=appointments.BookingRules.of(ctx.settings, ctx.limits),
    )
    return web.json_response({"id": appointment.id})


async def confirm(request: web.Request) -> web.Response:
    """ "Confirmar presença": the patient will come."""
    appointment = await _own_appointment(request)
    confirmed = await appointments.confirm(
        request.app[CTX].db, appointment.id, channel=PORTAL_CHANNEL, actor_id=appointment.patient_id
    )
    return web.json_response({"id": confirmed.id, "status": str(confirmed.status)})


async def reschedule(request: web.Request) -> web.Response:
    """Move the appointment to a free slot; the answer names the new appointment."""
    appointment, ctx = await _own_appointment(request), request.app[CTX]
    doctor_id, starts_at = _slot_in(await read_json(request))
    moved = await appointments.reschedule(
        ctx.db,
        appointments.BookingRules.of(ctx.settings, ctx.limits),
        appointment.id,
        starts_at=starts_at,
        doctor_id=doctor_id,
        channel=PORTAL_CHANNEL,
        self_service=True,
        actor_id=appointment.patient_id,
    )
    return web.json_response({"id": moved.id}, status=201)


async def calendar_file(request: web.Request) -> web.Response:
    """The appointment as an .ics file for the patient's calendar."""
    appointment = await _own_appointment(request)
    async with request.app[CTX].db.session() as session:
        clinic = (await session.execute(select(ClinicProfile).limit(1))).scalar_one_or_none()
    content = appointment_ics(appointment, appointment.doctor.name, clinic, utcnow())
    return web.Response(
        text=content,
        content_type="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="consulta-{appointment.id}.ics"'},
    )


async def past_appointments(request: web.Request) -> web.Response:
    """The patient's appointments that are over: past, cancelled or moved; newest first."""
    now = utcnow()
    async with request.app[CTX].db.session() as session:
        history = await patient_history(session, current_user(request).id)
    past = [
        appointment_view(item.appointment)
        for item in history
        if item.appointment.starts_at < now
        or item.appointment.status not in ACTIVE_APPOINTMENT_STATUSES
    ]
    return web.json_response(past[:PAST_SHOWN])


def _timeline_view(message: Message) -> dict[str, Any]:
    """What the patient and the clinic said, and the files in it (names, not contents)."""
    return {
        "id": message.id,
        "channel": message.channel,
        "direction": str(message.direction),
        "author_kind": str(message.author_kind),
        "text": message.text,
        "attachments": [
            {
                "type": a.get("type") or a.get("kind") or "document",
                "filename": a.get("filename"),
                "mime_type": a.get("mime_type"),
                "file": a.get("file"),
            }
            for a in message.attachments or []
            if isinstance(a, dict)
        ],
        "created_at": message.created_at.isoformat(),
    }


async def messages(request: web.Request) -> web.Response:
    """ "Histórico de mensagens": the patient's conversations on every channel as one
    timeline, oldest first, `HISTORY_PAGE` at a time (`before`: an id, for older ones);
    staff's internal notes never."""
    before = query_id(request, "before")
    query = select(Message).where(
        Message.patient_id == current_user(request).id, Message.internal.is_(False)
    )
    if before is not None:
        query = query.where(Message.id < before)
    async with request.app[CTX].db.session() as session:
        page = (
            (await session.execute(query.order_by(Message.id.desc()).limit(HISTORY_PAGE)))
            .scalars()
            .all()
        )
    return web.json_response([_timeline_view(m) for m in reversed(page)])


def setup(app: web.Application) -> None:
    app.router.add_get("/portal", portal_page)
    app.router.add_get("/api/portal/me", me)
    app.router.add_patch("/api/portal/me", update_me)
    app.router.add_post("/api/portal/me/phone/code", send_phone_code)
    app.router.add_post("/api/portal/me/phone/confirm", confirm_phone)
    app.router.add_get("/api/portal/appointments", list_appointments)
    app.router.add_post("/api/portal/appointments", book)
    app.router.add_get("/api/portal/appointments/past", past_appointments)
    app.router.add_post(r"/api/portal/appointments/{id:\d+}/cancel", cancel)
    app.router.add_post(r"/api/portal/appointments/{id:\d+}/confirm", confirm)
    app.router.add_post(r"/api/portal/appointments/{id:\d+}/reschedule", reschedule)
    app.router.add_get(r"/api/portal/appointments/{id:\d+}/calendar.ics", calendar_file)
    app.router.add_get("/api/portal/messages", messages)
    app.router.add_get("/api/portal/specialties", specialties)
    app.router.add_get("/api/portal/slots", slots)
