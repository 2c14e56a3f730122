"""The clinic's agenda: free slots, who is who (specialties and doctors), a day's schedule and a
patient's appointments.

Working hours are weekly blocks in clinic-local time (America/Sao_Paulo); everything stored is
UTC. A slot is free when it lies inside a working block, overlaps no block and overlaps no
active appointment of that doctor. Blocks are the national holidays (computed for any year, see
`scheduling.holidays`) and the stored schedule exceptions: clinic-wide ones (doctor_id NULL,
e.g. a city holiday) and a doctor's leave or blocked times.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from difflib import SequenceMatcher
from zoneinfo import ZoneInfo

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.settings import CLINIC_TIMEZONE
from models import (
    ACTIVE_APPOINTMENT_STATUSES,
    Appointment,
    Doctor,
    Reminder,
    ScheduleException,
    Specialty,
    User,
    doctor_specialties,
)
from scheduling.holidays import national_holidays
from scheduling.when import TimeWindow

CLINIC_TZ = ZoneInfo(CLINIC_TIMEZONE)
# How far ahead a search without an end looks, and how much of it is read at once.
SEARCH_HORIZON = timedelta(days=60)
SEARCH_CHUNK = timedelta(days=7)

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Slot:
    """A bookable time of one doctor (aware UTC datetimes)."""

    doctor_id: int
    doctor_name: str
    specialty_id: int
    specialty_name: str
    starts_at: datetime
    ends_at: datetime


def to_local(moment: datetime) -> datetime:
    """An aware datetime in clinic-local time, for display and for day boundaries."""
    return moment.astimezone(CLINIC_TZ)


def local_day_bounds(day: date) -> Interval:
    """The UTC start and end of a clinic-local calendar day."""
    start = datetime.combine(day, time(0), CLINIC_TZ)
    end = datetime.combine(day + timedelta(days=1), time(0), CLINIC_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


def _overlaps(a: Interval, b: Interval) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def working_blocks(doctor: Doctor, day: date) -> list[Interval]:
    """The doctor's working hours on a clinic-local day, in UTC (needs `working_hours`);
    none on days outside the doctor's active dates."""
    if not doctor.works_on(day):
        return []
    blocks = [
        (
            datetime.combine(day, block.starts, CLINIC_TZ).astimezone(UTC),
            datetime.combine(day, block.ends, CLINIC_TZ).astimezone(UTC),
        )
        for block in doctor.working_hours
        if block.weekday == day.weekday()
    ]
    return sorted(blocks)


def _grid(doctor: Doctor, day: date) -> list[Interval]:
    """Every slot of the doctor's working hours on a day, busy or not; a slot that would
    run past the end of its block is not offered."""
    length = timedelta(minutes=doctor.slot_minutes)
    slots = []
    for start, end in working_blocks(doctor, day):
        while start + length <= end:
            slots.append((start, start + length))
            start += length
    return slots


@dataclass(frozen=True)
class Block:
    """A time the agenda offers nothing in: a stored exception (with its id) or a national
    holiday (id None); doctor_id None blocks every doctor."""

    id: int | None
    doctor_id: int | None
    starts_at: datetime
    ends_at: datetime
    reason: str


def holiday_blocks(span: Interval) -> list[Block]:
    """The national holidays overlapping a span, as clinic-wide whole local days."""
    first, last = to_local(span[0]).year, to_local(span[1]).year
    found = []
    for year in range(first, last + 1):
        for day, name in national_holidays(year):
            interval = local_day_bounds(day)
            if _overlaps(interval, span):
                found.append(Block(None, None, interval[0], interval[1], name))
    return found


async def blocks_in(
    session: AsyncSession, span: Interval, doctor_ids: list[int] | tuple[int, ...] = ()
) -> list[Block]:
    """Everything blocking the agenda in a span: national holidays, clinic-wide exceptions
    and those of the given doctors, earliest first."""
    query = select(ScheduleException).where(
        ScheduleException.starts_at < span[1],
        ScheduleException.ends_at > span[0],
        or_(ScheduleException.doctor_id.is_(None), ScheduleException.doctor_id.in_(doctor_ids)),
    )
    found = holiday_blocks(span) + [
        Block(e.id, e.doctor_id, e.starts_at, e.ends_at, e.reason)
        for e in (await session.execute(query)).scalars()
    ]
    return sorted(found, key=lambda b: (b.starts_at, b.ends_at))


@dataclass
class _Busy:
    """Exceptions and active appointments overlapping a span of time."""

    clinic: list[Interval] = field(default_factory=list)
    by_doctor: dict[int, list[Interval]] = field(default_factory=lambda: defaultdict(list))

    def blocks(self, doctor_id: int, slot: Interval) -> bool:
        return any(_overlaps(slot, busy) for busy in self.clinic) or any(
            _overlaps(slot, busy) for busy in self.by_doctor.get(doctor_id, ())
        )


async def _load_busy(
    session: AsyncSession, doctor_ids: list[int], span: Interval, *, exclude: int | None = None
) -> _Busy:
    start, end = span
    busy = _Busy()
    for block in await blocks_in(session, span, doctor_ids):
        interval = (block.starts_at, block.ends_at)
        if block.doctor_id is None:
            busy.clinic.append(interval)
        else:
            busy.by_doctor[block.doctor_id].append(interval)
    appointments = select(Appointment.doctor_id, Appointment.starts_at, Appointment.ends_at).where(
        Appointment.doctor_id.in_(doctor_ids),
        Appointment.status.in_(ACTIVE_APPOINTMENT_STATUSES),
        Appointment.starts_at < end,
        Appointment.ends_at > start,
    )
    if exclude is not None:
        appointments = appointments.where(Appointment.id != exclude)
    for doctor_id, starts_at, ends_at in (await session.execute(appointments)).all():
        busy.by_doctor[doctor_id].append((starts_at, ends_at))
    return busy


def serving(doctor: Doctor, specialty_id: int | None) -> Specialty:
    """The specialty a booking with the doctor is in: the one asked for when the doctor
    serves it, else the doctor's first (needs `specialties`)."""
    chosen = next((s for s in doctor.specialties if s.id == specialty_id), None)
    return chosen or doctor.specialties[0]


def _slot(doctor: Doctor, interval: Interval, specialty_id: int | None = None) -> Slot:
    specialty = serving(doctor, specialty_id)
    return Slot(
        doctor_id=doctor.id,
        doctor_name=doctor.name,
        specialty_id=specialty.id,
        specialty_name=specialty.name,
        starts_at=interval[0],
        ends_at=interval[1],
    )


def _local_days(span: Interval) -> list[date]:
    first, last = to_local(span[0]).date(), to_local(span[1] - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _free(
    doctors: list[Doctor], busy: _Busy, span: Interval, specialty_id: int | None = None
) -> list[Slot]:
    """Free slots starting inside [span start, span end), earliest first."""
    found = [
        _slot(doctor, interval, specialty_id)
        for day in _local_days(span)
        for doctor in doctors
        for interval in _grid(doctor, day)
        if span[0] <= interval[0] < span[1] and not busy.blocks(doctor.id, interval)
    ]
    return sorted(found, key=lambda s: (s.starts_at, s.doctor_name, s.doctor_id))


def _doctors() -> Select[Doctor]:
    return select(Doctor).options(
        selectinload(Doctor.working_hours), selectinload(Doctor.specialties)
    )


async def active_doctors(
    session: AsyncSession,
    *,
    specialty_id: int | None = None,
    doctor_id: int | None = None,
    since: date | None = None,
) -> list[Doctor]:
    """The doctors (with hours and specialties) still active on or after the clinic-local
    day `since` (today when not given); by specialty served or by id."""
    since = since or to_local(datetime.now(UTC)).date()
    query = (
        _doctors()
        .where(or_(Doctor.active_until.is_(None), Doctor.active_until >= since))
        .order_by(Doctor.name, Doctor.id)
    )
    if specialty_id is not None:
        query = query.where(Doctor.specialties.any(Specialty.id == specialty_id))
    if doctor_id is not None:
        query = query.where(Doctor.id == doctor_id)
    return list((await session.execute(query)).scalars())


async def offered_specialties(
    session: AsyncSession, *, since: date | None = None
) -> list[Specialty]:
    """The specialties some doctor still active on or after `since` (today when not given)
    serves, by name: what the bot, the portal and the workspace offer to book."""
    since = since or to_local(datetime.now(UTC)).date()
    query = (
        select(Specialty)
        .where(
            Specialty.id.in_(
                select(doctor_specialties.c.specialty_id)
                .join(Doctor, Doctor.id == doctor_specialties.c.doctor_id)
                .where(or_(Doctor.active_until.is_(None), Doctor.active_until >= since))
            )
        )
        .order_by(Specialty.name)
    )
    return list((await session.execute(query)).scalars())


async def _earliest(
    session: AsyncSession,
    doctors: list[Doctor],
    span: Interval,
    limit: int,
    specialty_id: int | None = None,
) -> list[Slot]:
    found: list[Slot] = []
    start, end = span
    while start < end and len(found) < limit:
        chunk = (start, min(end, start + SEARCH_CHUNK))
        # Read a day past the chunk so a slot straddling its end still sees what follows.
        busy = await _load_busy(
            session, [d.id for d in doctors], (chunk[0], chunk[1] + timedelta(days=1))
        )
        found += _free(doctors, busy, chunk, specialty_id)
        start = chunk[1]
    return found[:limit]


async def find_slots(
    session: AsyncSession,
    *,
    now: datetime,
    window: TimeWindow | None = None,
    specialty_id: int | None = None,
    doctor_id: int | None = None,
    limit: int = 3,
) -> list[Slot]:
    """The nearest free slots at or after `now`, earliest first.

    With a window, only slots starting inside it; an exact-time window (start == end) means
    "at that time or the nearest around it": that day's free slots closest to the time
    first, then the earliest ones of the following days if the day has too few.
    """
    doctors = await active_doctors(
        session, specialty_id=specialty_id, doctor_id=doctor_id, since=to_local(now).date()
    )
    if not doctors or limit <= 0:
        return []
    horizon_end = now + SEARCH_HORIZON
    if window is not None and window.is_exact:
        target = window.start
        day_start, day_end = local_day_bounds(to_local(target).date())
        span = (max(now, day_start), day_end)
        same_day: list[Slot] = []
        if span[0] < span[1]:
            busy = await _load_busy(session, [d.id for d in doctors], span)
            same_day = _free(doctors, busy, span, specialty_id)
            same_day.sort(key=lambda s: (abs(s.starts_at - target), s.starts_at))
        found = same_day[:limit]
        if len(found) < limit:
            later = (max(now, day_end), max(horizon_end, day_end + SEARCH_HORIZON))
            found += await _earliest(session, doctors, later, limit - len(found), specialty_id)
        return found
    start = now if window is None else max(now, window.start)
    end = horizon_end if window is None else min(window.end, start + SEARCH_HORIZON)
    return await _earliest(session, doctors, (start, end), limit, specialty_id)


async def nearest_slots(
    session: AsyncSession,
    *,
    now: datetime,
    window: TimeWindow | None = None,
    specialty_id: int | None = None,
    doctor_id: int | None = None,
    limit: int = 3,
) -> tuple[list[Slot], bool]:
    """What to offer someone who asked for `window`: its nearest free slots (see
    `find_slots`) or, when it has none, the nearest ones after its start. The flag is False
    in that second case, so the offer can say these are the next ones instead."""
    slots = await find_slots(
        session, now=now, window=window, specialty_id=specialty_id, doctor_id=doctor_id, limit=limit
    )
    if slots or window is None:
        return slots, True
    after = await find_slots(
        session,
        now=max(now, window.start),
        specialty_id=specialty_id,
        doctor_id=doctor_id,
        limit=limit,
    )
    return after, False


async def free_slot_at(
    session: AsyncSession,
    doctor: Doctor,
    starts_at: datetime,
    *,
    ignore_appointment: int | None = None,
    specialty_id: int | None = None,
) -> Slot | None:
    """The doctor's free slot starting exactly at `starts_at`, or None (off the grid or the
    doctor's active dates, an exception, or taken). `doctor` needs `working_hours` and
    `specialties` loaded."""
    day = to_local(starts_at).date()
    interval = next((i for i in _grid(doctor, day) if i[0] == starts_at), None)
    if interval is None:
        return None
    busy = await _load_busy(session, [doctor.id], interval, exclude=ignore_appointment)
    return None if busy.blocks(doctor.id, interval) else _slot(doctor, interval, specialty_id)


# --- Who the patient means -------------------------------------------------------------

# Lay words patients use for a specialty, by specialty slug (after accent and case folding).
SPECIALTY_ALIASES = {
    "cardiologia": ("coracao", "cardiaco", "cardiaca"),
    "dermatologia": ("pele",),
    "pediatria": ("crianca", "criancas", "bebe", "infantil"),
    "ginecologia": ("gineco", "preventivo", "papanicolau"),
    "clinica-geral": ("clinico", "generalista", "checkup"),
}
# Shared stems shorter than this are chance ("card" in "cardapio"); longer ones are the
# same word in another form ("cardio", "cardiologista", "pediatra").
_MIN_STEM = 5
_TITLES = {"dr", "dra", "doutor", "doutora", "doutores", "medico", "medica"}
_PARTICLES = {"a", "o", "as", "os", "de", "da", "do", "das", "dos", "e", "com"}


def fold(text: str) -> str:
    """Lower case without accents: "Clínica" and "clinica" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text))


def _mistyped(word: str, key: str) -> bool:
    """One letter wrong, missing or extra in a word long enough to tell ("edocrinologia",
    "Beatris"); two differences are another word ("hematologia" is not "dermatologia")."""
    if min(len(word), len(key)) < _MIN_STEM or abs(len(word) - len(key)) > 1:
        return False
    matcher = SequenceMatcher(None, word, key, autojunk=False)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    return matched >= max(len(word), len(key)) - 1


def _shared_stem(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _best_unique[T](scored: list[tuple[float, T]]) -> T | None:
    """The single best-scoring candidate; None when nothing scored or the best is tied."""
    scored = sorted((s for s in scored if s[0] > 0), key=lambda s: s[0], reverse=True)
    if not scored or (len(scored) > 1 and scored[0][0] == scored[1][0]):
        return None
    return scored[0][1]


def _specialty_score(specialty: Specialty, words: list[str]) -> float:
    aliases = set(SPECIALTY_ALIASES.get(specialty.slug, ()))
    keys = set(_words(specialty.name)) | set(_words(specialty.slug.replace("-", " ")))
    score = 0.0
    for word in words:
        if word in aliases or word in keys:
            score = max(score, 100.0)
            continue
        stem = max((_shared_stem(word, key) for key in keys), default=0)
        if stem >= _MIN_STEM:
            score = max(score, float(stem))
        elif any(_mistyped(word, key) for key in keys):
            score = max(score, float(_MIN_STEM))
    return score


async def find_specialty(session: AsyncSession, text: str) -> Specialty | None:
    """The specialty the patient means ("cardio", "pediatra", "clínico geral", "pele")."""
    words = _words(text)
    specialties = (await session.execute(select(Specialty))).scalars().all()
    return _best_unique([(_specialty_score(s, words), s) for s in specialties])


def _doctor_score(doctor: Doctor, words: list[str], wants_female: bool | None) -> float:
    name_words = [w for w in _words(doctor.name) if w not in _TITLES | _PARTICLES]
    score = 0.0
    for word in words:
        if word in name_words:
            score += 2
        elif len(word) >= 4 and any(n.startswith(word) or _mistyped(word, n) for n in name_words):
            score += 1
    if score and wants_female is not None:
        # "dra." vs "dr." only breaks ties between otherwise equal matches.
        is_female = fold(doctor.name).startswith(("dra", "doutora"))
        score += 0.5 if is_female == wants_female else 0
    return score


async def find_doctor(session: AsyncSession, text: str) -> Doctor | None:
    """The doctor the patient means ("dra ana", "doutor Paulo", "Carvalho"); None when no
    one or more than one matches equally well."""
    words = _words(text)
    titles = [w for w in words if w in _TITLES]
    wants_female = None
    if titles:
        wants_female = any(w in ("dra", "doutora", "medica") for w in titles)
    words = [w for w in words if w not in _TITLES | _PARTICLES]
    doctors = await active_doctors(session)
    return _best_unique([(_doctor_score(d, words, wants_female), d) for d in doctors])


# --- A day of the agenda, for staff -------------------------------------------------------


@dataclass(frozen=True)
class AgendaItem:
    appointment: Appointment
    patient_name: str | None
    reminders: tuple[Reminder, ...]


@dataclass(frozen=True)
class DoctorDay:
    doctor: Doctor
    hours: tuple[Interval, ...]
    blocked: tuple[Block, ...]
    appointments: tuple[AgendaItem, ...]
    free: tuple[Slot, ...]


async def reminders_of(
    session: AsyncSession, appointment_ids: Sequence[int]
) -> defaultdict[int, list[Reminder]]:
    """The appointments' reminders and change notices, earliest first, by appointment."""
    reminders: defaultdict[int, list[Reminder]] = defaultdict(list)
    if appointment_ids:
        query = (
            select(Reminder)
            .where(Reminder.appointment_id.in_(appointment_ids))
            .order_by(Reminder.due_at, Reminder.id)
        )
        for reminder in (await session.execute(query)).scalars():
            reminders[reminder.appointment_id].append(reminder)
    return reminders


async def _with_reminders(
    session: AsyncSession, rows: Sequence[tuple[Appointment, str | None]]
) -> list[AgendaItem]:
    """Each (appointment, patient name) with the appointment's reminders, earliest first."""
    reminders = await reminders_of(session, [a.id for a, _ in rows])
    return [AgendaItem(a, name, tuple(reminders[a.id])) for a, name in rows]


async def patient_history(
    session: AsyncSession, patient_id: int, *, limit: int | None = None
) -> list[AgendaItem]:
    """A patient's appointments, newest first whatever their status, each with its reminders
    (doctor and specialty loaded)."""
    query = (
        select(Appointment, User.name)
        .join(User, User.id == Appointment.patient_id)
        .where(Appointment.patient_id == patient_id)
        .order_by(Appointment.starts_at.desc(), Appointment.id.desc())
        .limit(limit)
        .options(selectinload(Appointment.doctor), selectinload(Appointment.specialty))
    )
    return await _with_reminders(session, (await session.execute(query)).tuples().all())


async def day_agenda(
    session: AsyncSession, *, day: date, doctor_id: int | None = None, now: datetime | None = None
) -> list[DoctorDay]:
    """Each doctor working (or with appointments) on a clinic-local day: hours, exceptions,
    every appointment of the day whatever its status, and the free slots (from `now` on,
    when given)."""
    span = local_day_bounds(day)
    # Doctors active that day, and those who no longer are but still hold its appointments.
    booked = select(Appointment.doctor_id).where(
        Appointment.starts_at >= span[0], Appointment.starts_at < span[1]
    )
    working = (
        _doctors()
        .where(
            or_(
                Doctor.active_until.is_(None),
                Doctor.active_until >= day,
                Doctor.id.in_(booked),
            )
        )
        .order_by(Doctor.name, Doctor.id)
    )
    if doctor_id is not None:
        working = working.where(Doctor.id == doctor_id)
    doctors = list((await session.execute(working)).scalars())
    doctor_ids = [d.id for d in doctors]
    query = (
        select(Appointment, User.name)
        .join(User, User.id == Appointment.patient_id)
        .where(
            Appointment.doctor_id.in_(doctor_ids),
            Appointment.starts_at >= span[0],
            Appointment.starts_at < span[1],
        )
        .order_by(Appointment.starts_at, Appointment.id)
        .options(selectinload(Appointment.doctor), selectinload(Appointment.specialty))
    )
    listed = await _with_reminders(session, (await session.execute(query)).tuples().all())
    blocked = await blocks_in(session, span, doctor_ids)
    busy = await _load_busy(session, doctor_ids, span)
    free_span = (max(span[0], now), span[1]) if now else span
    days = []
    for doctor in doctors:
        items = tuple(i for i in listed if i.appointment.doctor_id == doctor.id)
        hours = tuple(working_blocks(doctor, day))
        if not hours and not items:
            continue
        free = _free([doctor], busy, free_span) if free_span[0] < free_span[1] else []
        days.append(
            DoctorDay(
                doctor=doctor,
                hours=hours,
                blocked=tuple(e for e in blocked if e.doctor_id in (None, doctor.id)),
                appointments=items,
                free=tuple(free),
            )
        )
    return days
