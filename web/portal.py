"""The patient portal: sign-up, "Meus dados", the data export, and the patient's own
appointments (book, cancel) through the same scheduling functions as the bot and staff."""

from __future__ import annotations

import json
from datetime import date, datetime, time

from aiohttp import web
from sqlalchemy import select

from accounts import patients
from accounts.auth import open_session
from models import Appointment, Specialty, utcnow
from scheduling import appointments
from scheduling.agenda import CLINIC_TZ, find_slots
from scheduling.when import TimeWindow
from web.agenda import appointment_view
from web.api import read_json
from web.keys import CTX, SESSION_COOKIE, current_user
from web.middlewares import ApiError
from web.pages import render_page

PORTAL_CHANNEL = "portal"
SLOTS_SHOWN = 8


def _fail(error: patients.PatientError) -> ApiError:
    status = 409 if error.code in ("error.email_taken", "error.cpf_taken") else 400
    return ApiError(status, error.code, **error.values)


async def signup_page(_request: web.Request) -> web.Response:
    return render_page("signup.html")


async def portal_page(_request: web.Request) -> web.Response:
    return render_page("portal.html")


async def signup(request: web.Request) -> web.Response:
    body = await read_json(request)
    ctx = request.app[CTX]
    try:
        patient = await patients.sign_up(
            ctx.db,
            name=body.get("name"),
            email=body.get("email"),
            phone=body.get("phone"),
            cpf=body.get("cpf"),
            password=body.get("password"),
            consent=body.get("consent"),
        )
    except patients.PatientError as error:
        raise _fail(error) from None
    async with ctx.db.session() as session:
        token = await open_session(session, patient)
    response = web.json_response({"id": patient.id}, status=201)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/")
    return response


async def me(request: web.Request) -> web.Response:
    patient = await patients.load_patient(request.app[CTX].db, current_user(request).id)
    return web.json_response(patients.profile_view(patient))


async def update_me(request: web.Request) -> web.Response:
    body = await read_json(request)
    try:
        patient = await patients.update_contact(
            request.app[CTX].db,
            current_user(request).id,
            name=body.get("name"),
            phone=body.get("phone"),
        )
    except patients.PatientError as error:
        raise _fail(error) from None
    return web.json_response(patients.profile_view(patient))


async def export(request: web.Request) -> web.Response:
    data = await patients.export_data(request.app[CTX].db, current_user(request).id)
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, indent=2),
        content_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="meus-dados.json"'},
    )


async def list_appointments(request: web.Request) -> web.Response:
    async with request.app[CTX].db.session() as session:
        upcoming = await appointments.upcoming_for_patient(
            session, current_user(request).id, now=utcnow()
        )
    return web.json_response([appointment_view(a) for a in upcoming])


async def specialties(request: web.Request) -> web.Response:
    async with request.app[CTX].db.session() as session:
        rows = (await session.execute(select(Specialty).order_by(Specialty.name))).scalars().all()
    return web.json_response([{"id": s.id, "name": s.name} for s in rows])


def _day_window(raw: str | None) -> TimeWindow | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "agenda.error.bad_parameter", name="day") from None
    return TimeWindow(
        datetime.combine(day, time.min, CLINIC_TZ), datetime.combine(day, time.max, CLINIC_TZ)
    )


async def slots(request: web.Request) -> web.Response:
    try:
        specialty_id = int(request.query["specialty_id"])
    except (KeyError, ValueError):
        raise ApiError(400, "agenda.error.bad_parameter", name="specialty_id") from None
    window = _day_window(request.query.get("day"))
    async with request.app[CTX].db.session() as session:
        found = await find_slots(
            session, now=utcnow(), window=window, specialty_id=specialty_id, limit=SLOTS_SHOWN
        )
    return web.json_response(
        [
            {
                "doctor_id": slot.doctor_id,
                "doctor_name": slot.doctor_name,
                "specialty_name": slot.specialty_name,
                "starts_at": slot.starts_at.isoformat(),
            }
            for slot in found
        ]
    )


def _scheduling_refusal(error: appointments.SchedulingError) -> ApiError:
    if isinstance(error, appointments.AppointmentNotFound):
        return ApiError(404, "error.not_found")
    return ApiError(409, error.code)


async def book(request: web.Request) -> web.Response:
    body = await read_json(request)
    try:
        doctor_id = int(body["doctor_id"])
        starts_at = datetime.fromisoformat(str(body["starts_at"]))
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, "agenda.error.bad_parameter", name="doctor_id/starts_at") from None
    if starts_at.tzinfo is None:
        raise ApiError(400, "agenda.error.bad_parameter", name="starts_at")
    patient = current_user(request)
    try:
        appointment = await appointments.book(
            request.app[CTX].db,
            patient_id=patient.id,
            doctor_id=doctor_id,
            starts_at=starts_at,
            channel=PORTAL_CHANNEL,
            actor_id=patient.id,
        )
    except appointments.SchedulingError as refused:
        raise _scheduling_refusal(refused) from None
    return web.json_response({"id": appointment.id}, status=201)


async def cancel(request: web.Request) -> web.Response:
    patient = current_user(request)
    appointment_id = int(request.match_info["id"])
    async with request.app[CTX].db.session() as session:
        appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.patient_id != patient.id:
        raise ApiError(404, "error.not_found")
    try:
        await appointments.cancel(
            request.app[CTX].db, appointment_id, channel=PORTAL_CHANNEL, actor_id=patient.id
        )
    except appointments.SchedulingError as refused:
        raise _scheduling_refusal(refused) from None
    return web.json_response({"id": appointment_id})


def setup(app: web.Application) -> None:
    app.router.add_get("/cadastro", signup_page)
    app.router.add_get("/portal", portal_page)
    app.router.add_post("/api/signup", signup)
    app.router.add_get("/api/portal/me", me)
    app.router.add_patch("/api/portal/me", update_me)
    app.router.add_get("/api/portal/export", export)
    app.router.add_get("/api/portal/appointments", list_appointments)
    app.router.add_post("/api/portal/appointments", book)
    app.router.add_post(r"/api/portal/appointments/{id:\d+}/cancel", cancel)
    app.router.add_get("/api/portal/specialties", specialties)
    app.router.add_get("/api/portal/slots", slots)
