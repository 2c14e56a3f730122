"""The admin's agenda set-up (a section of the admin page, web/static/admin-agenda.js):
specialties, doctors and the clinic's own holidays, read and changed through
`scheduling.setup`. Only admins (core.access) reach it; what the set-up refuses is answered
by the error middleware."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from models import Doctor, ScheduleException, utcnow
from models.views import specialty_view
from scheduling import setup as agenda
from scheduling.agenda import holiday_blocks, to_local
from web.api import read_json
from web.keys import CTX, client_ip, current_admin

# How far ahead the page lists the national holidays the agenda applies on its own.
NATIONAL_AHEAD = timedelta(days=366)


def _doctor_view(doctor: Doctor) -> dict[str, Any]:
    """A doctor as the set-up form edits them (specialties and hours loaded)."""
    return {
        "id": doctor.id,
        "name": doctor.name,
        "crm": doctor.crm,
        "specialty_ids": [s.id for s in doctor.specialties],
        "convenios": list(doctor.convenios),
        "slot_minutes": doctor.slot_minutes,
        "hours": [
            {
                "weekday": h.weekday,
                "starts": h.starts.strftime("%H:%M"),
                "ends": h.ends.strftime("%H:%M"),
            }
            for h in doctor.working_hours
        ],
        "active_from": doctor.active_from.isoformat() if doctor.active_from else None,
        "active_until": doctor.active_until.isoformat() if doctor.active_until else None,
    }


def _holiday_view(holiday: ScheduleException) -> dict[str, Any]:
    return {
        "id": holiday.id,
        "date": to_local(holiday.starts_at).date().isoformat(),
        "name": holiday.reason,
    }


async def get_setup(request: web.Request) -> web.Response:
    """GET /api/admin/agenda: specialties, doctors, the convênios the clinic lists, its own
    holidays and the national ones of the coming year."""
    current_admin(request)
    now = utcnow()
    async with request.app[CTX].db.session() as session:
        specialties = await agenda.specialties(session)
        doctors = await agenda.doctors(session)
        convenios = await agenda.clinic_convenios(session)
        holidays = await agenda.holidays(session, since=to_local(now).date())
    national = holiday_blocks((now, now + NATIONAL_AHEAD))
    return web.json_response(
        {
            "specialties": [specialty_view(s) for s in specialties],
            "doctors": [_doctor_view(d) for d in doctors],
            "convenios": convenios,
            "holidays": [_holiday_view(h) for h in holidays],
            "national_holidays": [
                {"date": to_local(b.starts_at).date().isoformat(), "name": b.reason}
                for b in national
            ],
        }
    )


async def create_specialty(request: web.Request) -> web.Response:
    admin = current_admin(request)
    body = await read_json(request)
    specialty = await agenda.create_specialty(
        request.app[CTX].db, admin, body.get("name"), ip=client_ip(request)
    )
    return web.json_response(specialty_view(specialty), status=201)


async def rename_specialty(request: web.Request) -> web.Response:
    admin = current_admin(request)
    body = await read_json(request)
    specialty = await agenda.rename_specialty(
        request.app[CTX].db,
        admin,
        int(request.match_info["id"]),
        body.get("name"),
        ip=client_ip(request),
    )
    return web.json_response(specialty_view(specialty))


async def create_doctor(request: web.Request) -> web.Response:
    admin = current_admin(request)
    form = agenda.doctor_form(await read_json(request))
    doctor = await agenda.create_doctor(request.app[CTX].db, admin, form, ip=client_ip(request))
    return web.json_response(_doctor_view(doctor), status=201)


async def update_doctor(request: web.Request) -> web.Response:
    admin = current_admin(request)
    form = agenda.doctor_form(await read_json(request))
    doctor = await agenda.update_doctor(
        request.app[CTX].db, admin, int(request.match_info["id"]), form, ip=client_ip(request)
    )
    return web.json_response(_doctor_view(doctor))


async def add_holiday(request: web.Request) -> web.Response:
    admin = current_admin(request)
    body = await read_json(request)
    holiday = await agenda.add_holiday(
        request.app[CTX].db,
        admin,
        body.get("date"),
        body.get("name"),
        now=utcnow(),
        ip=client_ip(request),
    )
    return web.json_response(_holiday_view(holiday), status=201)


async def remove_holiday(request: web.Request) -> web.Response:
    admin = current_admin(request)
    holiday_id = int(request.match_info["id"])
    await agenda.remove_holiday(request.app[CTX].db, admin, holiday_id, ip=client_ip(request))
    return web.json_response({"id": holiday_id})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/admin/agenda", get_setup)
    app.router.add_post("/api/admin/agenda/specialties", create_specialty)
    app.router.add_put(r"/api/admin/agenda/specialties/{id:\d+}", rename_specialty)
    app.router.add_post("/api/admin/agenda/doctors", create_doctor)
    app.router.add_put(r"/api/admin/agenda/doctors/{id:\d+}", update_doctor)
    app.router.add_post("/api/admin/agenda/holidays", add_holiday)
    app.router.add_delete(r"/api/admin/agenda/holidays/{id:\d+}", remove_holiday)
