"""The clinic's own agenda, as its admins set it up in the app: specialties, doctors (the
specialties they serve, the convênios they accept, weekly hours, slot length, active dates)
and the clinic's city and state holidays.

Slot search (`scheduling.agenda`) reads these rows on every search, so the bot, the portal and
the workspace offer the new times at once; the bot resolves specialties and doctors by name
against the same rows, so nothing is retrained. Appointments already booked are never moved:
a new slot length or new hours change only what is offered from then on, and a doctor whose
active dates end keeps the appointments booked after them (the staff agenda still shows
them). Each change is one transaction, audit-logged (`agenda_changed`); what is refused is a
`SetupError` (400, a catalog key naming the reason), `SetupConflict` (409) or `NotFound`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core import audit
from core.audit import AuditAction
from core.errors import BadRequest, Conflict, NotFound
from models import ClinicProfile, Doctor, ScheduleException, Specialty, User, WorkingHours
from models.db import Database
from scheduling.agenda import CLINIC_TZ, fold, to_local

MIN_SLOT_MINUTES, MAX_SLOT_MINUTES = 5, 240
MAX_NAME = 160
MAX_SPECIALTY_NAME = 80
MAX_CRM = 32
WEEKDAYS = range(7)  # 0 is Monday, as `WorkingHours.weekday`
# pt-BR weekday names for the refusals ("segunda-feira: ...").
WEEKDAY_NAMES = (
    "segunda-feira",
    "terça-feira",
    "quarta-feira",
    "quinta-feira",
    "sexta-feira",
    "sábado",
    "domingo",
)
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class SetupError(BadRequest):
    """What an admin typed cannot be the agenda (400); `code` names the reason."""

    code = "agenda_setup.error.invalid"


class SetupConflict(Conflict):
    code = "agenda_setup.error.specialty_exists"


@dataclass(frozen=True)
class HoursRange:
    """A weekly range of a doctor's hours, clinic-local; weekday 0 is Monday."""

    weekday: int
    starts: time
    ends: time


@dataclass(frozen=True)
class DoctorForm:
    """A doctor as the admin's form describes them (see `doctor_form`)."""

    name: str
    crm: str | None
    specialty_ids: tuple[int, ...]
    convenios: tuple[str, ...]
    slot_minutes: int
    hours: tuple[HoursRange, ...]
    active_from: date | None
    active_until: date | None


# --- Reading the admin's form ------------------------------------------------------------


def _text(value: object, code: str, *, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit:
        raise SetupError(code)
    return value.strip()


def _clock(value: object) -> time:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise SetupError("agenda_setup.error.hours")
    return time(int(match.group(1)), int(match.group(2)))


def _day(value: object) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise SetupError("agenda_setup.error.dates")


def _ranges(value: object, slot_minutes: int) -> tuple[HoursRange, ...]:
    """Weekly ranges ([{weekday, starts: "HH:MM", ends}]), each ending after it starts and
    long enough for one slot, none overlapping another of its weekday."""
    if not isinstance(value, list):
        raise SetupError("agenda_setup.error.hours")
    ranges = []
    for item in value:
        if not isinstance(item, Mapping):
            raise SetupError("agenda_setup.error.hours")
        weekday = item.get("weekday")
        if not isinstance(weekday, int) or isinstance(weekday, bool) or weekday not in WEEKDAYS:
            raise SetupError("agenda_setup.error.hours")
        starts, ends = _clock(item.get("starts")), _clock(item.get("ends"))
        day = WEEKDAY_NAMES[weekday]
        if ends <= starts:
            raise SetupError("agenda_setup.error.hours_order", dia=day)
        length = datetime.combine(date.min, ends) - datetime.combine(date.min, starts)
        if length < timedelta(minutes=slot_minutes):
            raise SetupError("agenda_setup.error.hours_short", dia=day, minutos=slot_minutes)
        ranges.append(HoursRange(weekday, starts, ends))
    ranges.sort(key=lambda r: (r.weekday, r.starts))
    for before, after in pairwise(ranges):
        if before.weekday == after.weekday and after.starts < before.ends:
            raise SetupError("agenda_setup.error.hours_overlap", dia=WEEKDAY_NAMES[after.weekday])
    return tuple(ranges)


def doctor_form(body: Mapping[str, object]) -> DoctorForm:
    """A doctor from the admin's JSON: name, crm, specialty_ids, convenios, slot_minutes (5 to
    240), hours ([{weekday, starts, ends}]), active_from and active_until (YYYY-MM-DD or
    empty). Which ids and convênios exist is checked when saving."""
    name = _text(body.get("name"), "agenda_setup.error.doctor_name", limit=MAX_NAME)
    crm = body.get("crm")
    if crm is not None and (not isinstance(crm, str) or len(crm.strip()) > MAX_CRM):
        raise SetupError("agenda_setup.error.crm")
    ids = body.get("specialty_ids")
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    ):
        raise SetupError("agenda_setup.error.specialties")
    convenios = body.get("convenios", [])
    if not isinstance(convenios, list) or not all(isinstance(c, str) for c in convenios):
        raise SetupError("agenda_setup.error.convenios")
    minutes = body.get("slot_minutes")
    if (
        not isinstance(minutes, int)
        or isinstance(minutes, bool)
        or not MIN_SLOT_MINUTES <= minutes <= MAX_SLOT_MINUTES
    ):
        raise SetupError(
            "agenda_setup.error.slot_minutes", minimo=MIN_SLOT_MINUTES, maximo=MAX_SLOT_MINUTES
        )
    active_from, active_until = _day(body.get("active_from")), _day(body.get("active_until"))
    if active_from and active_until and active_until < active_from:
        raise SetupError("agenda_setup.error.dates")
    return DoctorForm(
        name=name,
        crm=(crm.strip() or None) if isinstance(crm, str) else None,
        specialty_ids=tuple(dict.fromkeys(ids)),
        convenios=tuple(dict.fromkeys(c.strip() for c in convenios if c.strip())),
        slot_minutes=minutes,
        hours=_ranges(body.get("hours"), minutes),
        active_from=active_from,
        active_until=active_until,
    )


# --- Reading the set-up --------------------------------------------------------------------


async def specialties(session: AsyncSession) -> list[Specialty]:
    return list((await session.execute(select(Specialty).order_by(Specialty.name))).scalars())


async def doctors(session: AsyncSession) -> list[Doctor]:
    """Every doctor, those whose active dates ended too (specialties and hours loaded)."""
    query = (
        select(Doctor)
        .options(selectinload(Doctor.specialties), selectinload(Doctor.working_hours))
        .order_by(Doctor.name, Doctor.id)
    )
    return list((await session.execute(query)).scalars())


async def clinic_convenios(session: AsyncSession) -> list[str]:
    """The convênios the clinic profile lists (what a doctor may accept)."""
    query = select(ClinicProfile.data).order_by(ClinicProfile.id).limit(1)
    data = (await session.execute(query)).scalar_one_or_none() or {}
    listed = data.get("convenios")
    return [str(c) for c in listed] if isinstance(listed, list) else []


async def holidays(session: AsyncSession, *, since: date) -> list[ScheduleException]:
    """The clinic's own holidays (clinic-wide exceptions) from the local day `since` on."""
    start = datetime.combine(since, time(0), CLINIC_TZ)
    query = (
        select(ScheduleException)
        .where(ScheduleException.doctor_id.is_(None), ScheduleException.ends_at > start)
        .order_by(ScheduleException.starts_at)
    )
    return list((await session.execute(query)).scalars())


# --- Changes ---------------------------------------------------------------------------------


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")


async def _record(
    session: AsyncSession, admin: User, ip: str | None, *, what: str, change: str, id: int
) -> None:
    await audit.record(
        session, admin, AuditAction.AGENDA_CHANGED, ip=ip, what=what, change=change, id=id
    )


async def _check_specialty_name(session: AsyncSession, name: object, *, own: int | None) -> str:
    cleaned = _text(name, "agenda_setup.error.specialty_name", limit=MAX_SPECIALTY_NAME)
    slug = _slug(cleaned)
    if not slug:
        raise SetupError("agenda_setup.error.specialty_name")
    query = select(Specialty.id).where(Specialty.slug == slug)
    if own is not None:
        query = query.where(Specialty.id != own)
    if (await session.execute(query)).first() is not None:
        raise SetupConflict(especialidade=cleaned)
    return cleaned


async def create_specialty(
    db: Database, admin: User, name: object, *, ip: str | None = None
) -> Specialty:
    """A new specialty; SetupConflict when one of the same name (accents and case aside)
    exists."""
    async with db.session() as session:
        cleaned = await _check_specialty_name(session, name, own=None)
        specialty = Specialty(name=cleaned, slug=_slug(cleaned))
        session.add(specialty)
        await session.flush()
        await _record(session, admin, ip, what="specialty", change="created", id=specialty.id)
    return specialty


async def rename_specialty(
    db: Database, admin: User, specialty_id: int, name: object, *, ip: str | None = None
) -> Specialty:
    async with db.session() as session:
        specialty = await session.get(Specialty, specialty_id, with_for_update=True)
        if specialty is None:
            raise NotFound()
        specialty.name = await _check_specialty_name(session, name, own=specialty_id)
        specialty.slug = _slug(specialty.name)
        await _record(session, admin, ip, what="specialty", change="updated", id=specialty_id)
    return specialty


async def _apply(session: AsyncSession, doctor: Doctor, form: DoctorForm) -> None:
    chosen = (
        (await session.execute(select(Specialty).where(Specialty.id.in_(form.specialty_ids))))
        .scalars()
        .all()
    )
    if len(chosen) != len(form.specialty_ids):
        raise SetupError("agenda_setup.error.specialties")
    offered = await clinic_convenios(session)
    unknown = [c for c in form.convenios if c not in offered]
    if unknown:
        raise SetupError("agenda_setup.error.convenio", convenio=unknown[0])
    doctor.name, doctor.crm, doctor.slot_minutes = form.name, form.crm, form.slot_minutes
    doctor.convenios = list(form.convenios)
    doctor.active_from, doctor.active_until = form.active_from, form.active_until
    doctor.specialties = sorted(chosen, key=lambda s: s.name)
    doctor.working_hours = [
        WorkingHours(weekday=r.weekday, starts=r.starts, ends=r.ends) for r in form.hours
    ]


async def create_doctor(
    db: Database, admin: User, form: DoctorForm, *, ip: str | None = None
) -> Doctor:
    """A new doctor, offered by slot search from their first active day."""
    async with db.session() as session:
        doctor = Doctor(specialties=[], working_hours=[])
        await _apply(session, doctor, form)
        session.add(doctor)
        await session.flush()
        await _record(session, admin, ip, what="doctor", change="created", id=doctor.id)
    return doctor


async def update_doctor(
    db: Database, admin: User, doctor_id: int, form: DoctorForm, *, ip: str | None = None
) -> Doctor:
    """Replace what the doctor's form holds. The doctor's row is locked as a booking locks
    it, so a booking lands either before the change or on the new hours; booked
    appointments stay where they are."""
    async with db.session() as session:
        query = (
            select(Doctor)
            .where(Doctor.id == doctor_id)
            .with_for_update()
            .options(selectinload(Doctor.specialties), selectinload(Doctor.working_hours))
        )
        doctor = (await session.execute(query)).scalar_one_or_none()
        if doctor is None:
            raise NotFound()
        await _apply(session, doctor, form)
        await _record(session, admin, ip, what="doctor", change="updated", id=doctor_id)
    return doctor


async def add_holiday(
    db: Database,
    admin: User,
    day: object,
    name: object,
    *,
    now: datetime,
    ip: str | None = None,
) -> ScheduleException:
    """A clinic-local day (YYYY-MM-DD, today or later) on which nobody is offered; the
    appointments already on it stay (the staff agenda shows them)."""
    when = _day(day)
    if when is None or when < to_local(now).date():
        raise SetupError("agenda_setup.error.holiday_date")
    reason = _text(name, "agenda_setup.error.holiday_name", limit=MAX_NAME)
    starts = datetime.combine(when, time(0), CLINIC_TZ)
    ends = datetime.combine(when + timedelta(days=1), time(0), CLINIC_TZ)
    async with db.session() as session:
        query = select(ScheduleException.id).where(
            ScheduleException.doctor_id.is_(None),
            ScheduleException.starts_at < ends,
            ScheduleException.ends_at > starts,
        )
        if (await session.execute(query)).first() is not None:
            raise SetupConflict("agenda_setup.error.holiday_exists")
        holiday = ScheduleException(doctor_id=None, starts_at=starts, ends_at=ends, reason=reason)
        session.add(holiday)
        await session.flush()
        await _record(session, admin, ip, what="holiday", change="created", id=holiday.id)
    return holiday


async def remove_holiday(
    db: Database, admin: User, holiday_id: int, *, ip: str | None = None
) -> None:
    """Remove one of the clinic's own holidays: its day is offered again."""
    async with db.session() as session:
        holiday = await session.get(ScheduleException, holiday_id, with_for_update=True)
        if holiday is None or holiday.doctor_id is not None:
            raise NotFound()
        await session.delete(holiday)
        await _record(session, admin, ip, what="holiday", change="removed", id=holiday_id)
