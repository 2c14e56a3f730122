"""The patient portal: "Meus dados" (consent, export and erasure are in web/privacy.py),
and the patient's own appointments (book, cancel) through the same scheduling functions as
the bot and staff.
What those refuse (a `core.errors.ClinicError`) is answered by the error middleware."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from aiohttp import web
from sqlalchemy import select

from accounts import patients
from core import access
from core.context import Context
from core.errors import BadRequest, NotFound
from models import Appointment, Specialty, utcnow
from models.views import appointment_view, patient_view, slot_view, specialty_view
from scheduling import appointments
from scheduling.agenda import CLINIC_TZ, find_slots
from scheduling.when import TimeWindow
from web.api import read_json
from web.keys import CTX, current_user, id_from
from web.pages import render_page

PORTAL_CHANNEL = "portal"
SLOTS_SHOWN = 8


def _bad_parameter(name: str) -> BadRequest:
    return BadRequest("agenda.error.bad_parameter", name=name)


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
        rows = (await session.execute(select(Specialty).order_by(Specialty.name))).scalars().all()
    return web.json_response([specialty_view(s) for s in rows])


def _day_window(raw: str | None) -> TimeWindow | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise _bad_parameter("day") from None
    return TimeWindow(
        datetime.combine(day, time.min, CLINIC_TZ), datetime.combine(day, time.max, CLINIC_TZ)
    )


async def slots(request: web.Request) -> web.Response:
    specialty_id = id_from(request.query.get("specialty_id"))
    if specialty_id is None:
        raise _bad_parameter("specialty_id")
    window = _day_window(request.query.get("day"))
    async with request.app[CTX].db.session() as session:
        found = await find_slots(
            session, now=utcnow(), window=window, specialty_id=specialty_id, limit=SLOTS_SHOWN
        )
    return web.json_response([slot_view(slot) for slot in found])


async def book(request: web.Request) -> web.Response:
    body = await read_json(request)
    try:
        starts_at = datetime.fromisoformat(str(body["starts_at"]))
    except (KeyError, ValueError):
        raise _bad_parameter("starts_at") from None
    if (doctor_id := id_from(body.get("doctor_id"))) is None:
        raise _bad_parameter("doctor_id")
    if starts_at.tzinfo is None:
        raise _bad_parameter("starts_at")
    patient, ctx = current_user(request), request.app[CTX]
    appointment = await appointments.book(
        ctx.db,
        appointments.BookingRules.of(ctx.settings, ctx.limits),
        patient_id=patient.id,
        doctor_id=doctor_id,
        starts_at=starts_at,
        channel=PORTAL_CHANNEL,
        self_service=True,
        actor_id=patient.id,
    )
    return web.json_response({"id": appointment.id}, status=201)


async def cancel(request: web.Request) -> web.Response:
    patient = current_user(request)
    appointment_id = int(request.match_info["id"])
    async with request.app[CTX].db.session() as session:
        appointment = await session.get(Appointment, appointment_id)
        # Someone else's appointment is answered as a missing one: its id says nothing.
        if appointment is None or not await access.may_act_on_appointments_of(
            session, patient, appointment.patient_id
        ):
            raise NotFound()
    ctx = request.app[CTX]
    await appointments.cancel(
        ctx.db,
        appointment_id,
        channel=PORTAL_CHANNEL,
        actor_id=patient.id,
        paced_by=appointments.BookingRules.of(ctx.settings, ctx.limits),
    )
    return web.json_response({"id": appointment_id})


def setup(app: web.Application) -> None:
    app.router.add_get("/portal", portal_page)
    app.router.add_get("/api/portal/me", me)
    app.router.add_patch("/api/portal/me", update_me)
    app.router.add_post("/api/portal/me/phone/code", send_phone_code)
    app.router.add_post("/api/portal/me/phone/confirm", confirm_phone)
    app.router.add_get("/api/portal/appointments", list_appointments)
    app.router.add_post("/api/portal/appointments", book)
    app.router.add_post(r"/api/portal/appointments/{id:\d+}/cancel", cancel)
    app.router.add_get("/api/portal/specialties", specialties)
    app.router.add_get("/api/portal/slots", slots)
