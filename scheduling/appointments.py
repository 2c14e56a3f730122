"""Appointment changes: the only code that writes appointments.

The bot, the patient portal and the staff workspace all book, cancel, reschedule, confirm and
record attendance through these functions. Each change is one transaction that locks what it
changes and writes an `AppointmentEvent` saying who made it (`actor_id`, None for the patient
through the bot) and through which channel.

agendada → confirmada → realizada | faltou, and agendada | confirmada → cancelada; remarcar
cancels the old appointment and books a new one linked to it by `rescheduled_from_id`.

Managers block a doctor's time (leave, a blocked range) with `block_time`: slot search stops
offering it at once, and the appointments already inside are returned for someone to move,
never cancelled behind the patient's back. `unblock_time` removes a block.

Patients are told of the changes staff make: `cancel` and `reschedule` with `notify_patient`,
and `notify_blocked` for the appointments inside a block ("avisar e remarcar"), queue a notice
in the reminders outbox in the same transaction as the change (`Reminder.kind`), at most one of
each kind per appointment; the worker delivers it exactly once like a reminder
(scheduling.reminders). Changes the patient makes (the bot, the portal) are not notified: they
already got their answer.

How much of the agenda one patient may take (`BookingRules`, from the settings): at most
`MAX_ACTIVE_APPOINTMENTS_PER_SPECIALTY` active future appointments per specialty, whoever
books (staff may go beyond it with `over_cap`, which is audited); and what the patient does on
their own (`self_service`: the bot, the portal) is paced on the shared rate limiter
(`BOOKING_CHANGES_PER_HOUR` bookings, cancellations and moves an hour) and, to book, needs a
verified contact (`messaging.identities.has_verified_contact`). So neither a script nor a
stolen session can empty a doctor's agenda.

No double booking: `book` locks the doctor's row (serialising bookings of one doctor on
PostgreSQL; SQLite has a single writer), checks the slot is still free, and the partial unique
index on active (doctor, start) refuses whatever slips past. Reminders are planned from the
configured offsets by the worker (`scheduling.reminders.plan_reminders`) within seconds of a
booking, so no process that books needs the reminder configuration; cancelling,
rescheduling or recording attendance cancels the reminders not yet sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from core import audit
from core.audit import AuditAction
from core.catalog import t
from core.errors import Conflict, TooManyRequests
from core.ratelimit import RateLimits
from core.settings import Settings
from messaging.identities import has_verified_contact
from models import (
    ACTIVE_APPOINTMENT_STATUSES,
    Appointment,
    AppointmentEvent,
    AppointmentStatus,
    Doctor,
    Reminder,
    ReminderKind,
    ReminderStatus,
    ScheduleException,
    Specialty,
    User,
    utcnow,
)
from models.db import Database
from scheduling.agenda import free_slot_at, serving

log = logging.getLogger(__name__)


class SchedulingError(Conflict):
    """A change the agenda refuses (409); `code` is a catalog key for the message to people."""

    code = "agenda.error.conflict"


class SlotTaken(SchedulingError):
    """Someone else holds that time (or holds a booking overlapping it)."""

    code = "agenda.error.slot_taken"


class SlotUnavailable(SlotTaken):
    """That time is not bookable at all: past, off the doctor's hours, a holiday or leave."""

    code = "agenda.error.slot_unavailable"


class AppointmentNotFound(SchedulingError):
    code = "agenda.error.not_found"
    status = 404


class InvalidTransition(SchedulingError):
    """The appointment's status (or its time having come) does not allow this change;
    `current` is the status it has now."""

    code = "agenda.error.invalid_transition"

    def __init__(self, appointment: Appointment, target: str) -> None:
        # Plain values: the transaction rolls back and expires the appointment object.
        self.appointment_id: int = appointment.id
        self.current = AppointmentStatus(appointment.status)
        self.target = target
        super().__init__()

    def __str__(self) -> str:
        return f"appointment {self.appointment_id}: {self.current} → {self.target}"


class CapReached(SchedulingError):
    """The patient already holds as many active future appointments in this specialty as the
    clinic allows."""

    code = "agenda.error.cap_reached"


class ContactNotVerified(SchedulingError):
    """The patient has no verified contact, so cannot book on their own (staff can for them)."""

    code = "agenda.error.contact_not_verified"
    status = 403


class TooManyChanges(TooManyRequests):
    """The patient changed their agenda too often lately; `retry_after` says for how long."""

    code = "agenda.error.too_many_changes"


class InvalidBlock(SchedulingError):
    """A block the agenda cannot take (no such doctor, an empty or past range, no reason);
    the instance's `code` says which."""

    status = 400


class BlockNotFound(SchedulingError):
    code = "agenda.error.no_block"
    status = 404


# A longer block is almost surely a typo in the year; leave longer than this is two blocks.
MAX_BLOCK = timedelta(days=366)
MAX_REASON = 160


# The window in which a patient's own changes are counted.
CHANGES_WINDOW = 3600.0


@dataclass(frozen=True)
class BookingRules:
    """How much of the agenda one patient may hold and how fast they may change it (see the
    module's docstring); `limits` is the clinic's shared rate limiter."""

    limits: RateLimits
    max_per_specialty: int = 2
    changes_per_hour: int = 5

    @classmethod
    def of(cls, settings: Settings, limits: RateLimits) -> BookingRules:
        return cls(
            limits,
            max_per_specialty=settings.max_active_appointments_per_specialty,
            changes_per_hour=settings.booking_changes_per_hour,
        )

    def _pace_key(self, patient_id: int) -> str:
        return f"agenda:changes:{patient_id}"

    async def check_pace(self, patient_id: int) -> None:
        """TooManyChanges while the patient's changes of the last hour are used up."""
        wait = await self.limits.peek(self._pace_key(patient_id), self.changes_per_hour)
        if wait > 0:
            raise TooManyChanges(wait)

    async def count_change(self, patient_id: int) -> None:
        """Count a change the patient made (only what went through: a refused attempt, such as
        a slot taken meanwhile, costs nothing)."""
        await self.limits.hit(self._pace_key(patient_id), self.changes_per_hour, CHANGES_WINDOW)


_ALLOWED = {
    AppointmentStatus.SCHEDULED: {
        AppointmentStatus.CONFIRMED,
        AppointmentStatus.CANCELLED,
        AppointmentStatus.DONE,
        AppointmentStatus.NO_SHOW,
    },
    AppointmentStatus.CONFIRMED: {
        AppointmentStatus.CANCELLED,
        AppointmentStatus.DONE,
        AppointmentStatus.NO_SHOW,
    },
    # Corrections at the front desk: attended and no-show may be swapped.
    AppointmentStatus.DONE: {AppointmentStatus.NO_SHOW},
    AppointmentStatus.NO_SHOW: {AppointmentStatus.DONE},
}


def _with_names() -> tuple[LoaderOption, ...]:
    return (selectinload(Appointment.doctor), selectinload(Appointment.specialty))


async def _lock_appointment(session: AsyncSession, appointment_id: int) -> Appointment:
    query = (
        select(Appointment)
        .where(Appointment.id == appointment_id)
        .with_for_update()
        .options(*_with_names())
    )
    appointment = (await session.execute(query)).scalar_one_or_none()
    if appointment is None:
        raise AppointmentNotFound(appointment_id=appointment_id)
    return appointment


def _record(
    session: AsyncSession,
    appointment: Appointment,
    from_status: AppointmentStatus | None,
    *,
    channel: str,
    actor_id: int | None,
    note: str = "",
) -> None:
    session.add(
        AppointmentEvent(
            appointment_id=appointment.id,
            from_status=str(from_status) if from_status else None,
            to_status=str(appointment.status),
            actor_id=actor_id,
            channel=channel,
            note=note,
        )
    )


def _change(
    session: AsyncSession,
    appointment: Appointment,
    target: AppointmentStatus,
    *,
    channel: str,
    actor_id: int | None,
    note: str = "",
) -> bool:
    """Move to `target` and record it; False (nothing recorded) when already there, so a
    tapped button arriving twice changes nothing."""
    if appointment.status == target:
        return False
    if target not in _ALLOWED.get(appointment.status, ()):
        raise InvalidTransition(appointment, str(target))
    previous = appointment.status
    appointment.status = target
    _record(session, appointment, previous, channel=channel, actor_id=actor_id, note=note)
    return True


def _require_future(appointment: Appointment, target: str, now: datetime) -> None:
    if appointment.starts_at <= now:
        raise InvalidTransition(appointment, target)


async def _cancel_unsent_reminders(session: AsyncSession, appointment_id: int) -> None:
    """Reminders not yet handed to a channel never go out. One already recorded as a message
    is mid-delivery: the dispatcher finishes it (see scheduling.reminders)."""
    await session.execute(
        update(Reminder)
        .where(
            Reminder.appointment_id == appointment_id,
            or_(
                Reminder.status == ReminderStatus.PENDING,
                and_(Reminder.status == ReminderStatus.SENDING, Reminder.message_id.is_(None)),
            ),
        )
        .values(status=ReminderStatus.CANCELLED, lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def _notify(
    session: AsyncSession,
    appointment_id: int,
    kind: ReminderKind,
    *,
    actor_id: int | None,
    now: datetime,
) -> bool:
    """Queue the patient's notice of a change (the appointment's row is locked by the
    caller); False when that notice was queued already."""
    query = select(Reminder.id).where(
        Reminder.appointment_id == appointment_id, Reminder.kind == kind
    )
    if (await session.execute(query)).first() is not None:
        return False
    session.add(
        Reminder(
            appointment_id=appointment_id,
            kind=kind,
            offset_minutes=0,
            due_at=now,
            requested_by_id=actor_id,
        )
    )
    return True


async def _lock_doctor(session: AsyncSession, doctor_id: int) -> Doctor | None:
    query = (
        select(Doctor)
        .where(Doctor.id == doctor_id)
        .with_for_update()
        .options(selectinload(Doctor.working_hours), selectinload(Doctor.specialties))
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _is_taken(session: AsyncSession, doctor_id: int, starts_at: datetime) -> bool:
    query = select(Appointment.id).where(
        Appointment.doctor_id == doctor_id,
        Appointment.status.in_(ACTIVE_APPOINTMENT_STATUSES),
        Appointment.starts_at <= starts_at,
        Appointment.ends_at > starts_at,
    )
    return (await session.execute(query.limit(1))).first() is not None


async def active_in_specialty(
    session: AsyncSession, patient_id: int, specialty_id: int, *, now: datetime
) -> int:
    """How many active future appointments the patient holds in the specialty."""
    query = select(func.count(Appointment.id)).where(
        Appointment.patient_id == patient_id,
        Appointment.specialty_id == specialty_id,
        Appointment.status.in_(ACTIVE_APPOINTMENT_STATUSES),
        Appointment.starts_at >= now,
    )
    return (await session.execute(query)).scalar_one()


async def check_may_book(
    session: AsyncSession,
    rules: BookingRules,
    *,
    patient_id: int,
    specialty: Specialty,
    self_service: bool,
    now: datetime,
    over_cap: bool = False,
) -> bool:
    """Refuse a booking the patient may not have: ContactNotVerified when they book on their
    own without a verified contact, CapReached when the specialty's cap is reached (unless
    staff book `over_cap`). True when the booking goes beyond the cap (staff's choice)."""
    if self_service and not await has_verified_contact(session, patient_id):
        raise ContactNotVerified()
    held = await active_in_specialty(session, patient_id, specialty.id, now=now)
    beyond = held >= rules.max_per_specialty
    if beyond and not over_cap:
        raise CapReached(especialidade=specialty.name, maximo=rules.max_per_specialty)
    return beyond


async def _book_in(
    session: AsyncSession,
    rules: BookingRules,
    *,
    patient_id: int,
    doctor_id: int,
    starts_at: datetime,
    channel: str,
    actor_id: int | None,
    self_service: bool,
    over_cap: bool,
    now: datetime,
    specialty_id: int | None = None,
    rescheduled_from: Appointment | None = None,
) -> Appointment:
    # The patient's row is locked first: two bookings of one patient (with different doctors
    # of a specialty) are counted against the cap one after the other.
    if await session.get(User, patient_id, with_for_update=True) is None:
        raise ValueError(f"no patient {patient_id}")
    doctor = await _lock_doctor(session, doctor_id)
    if doctor is None or starts_at < now:
        raise SlotUnavailable(doctor_id=doctor_id, starts_at=starts_at)
    # The specialty asked for (a rescheduled appointment keeps its own) when the doctor
    # serves it, else the doctor's first.
    if rescheduled_from is not None:
        specialty_id = rescheduled_from.specialty_id
    specialty = serving(doctor, specialty_id)
    if rescheduled_from is None:
        # The same request arriving twice (a retried message, a double click) books once.
        query = (
            select(Appointment)
            .where(
                Appointment.patient_id == patient_id,
                Appointment.doctor_id == doctor_id,
                Appointment.starts_at == starts_at,
                Appointment.status.in_(ACTIVE_APPOINTMENT_STATUSES),
            )
            .options(*_with_names())
        )
        if existing := (await session.execute(query)).scalar_one_or_none():
            return existing
    beyond_cap = await check_may_book(
        session,
        rules,
        patient_id=patient_id,
        specialty=specialty,
        self_service=self_service and rescheduled_from is None,
        over_cap=over_cap,
        now=now,
    )
    slot = await free_slot_at(session, doctor, starts_at, specialty_id=specialty.id)
    if slot is None:
        if await _is_taken(session, doctor_id, starts_at):
            raise SlotTaken(doctor_id=doctor_id, starts_at=starts_at)
        raise SlotUnavailable(doctor_id=doctor_id, starts_at=starts_at)
    appointment = Appointment(
        patient_id=patient_id,
        doctor_id=doctor.id,
        specialty_id=specialty.id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        status=AppointmentStatus.SCHEDULED,
        rescheduled_from_id=rescheduled_from.id if rescheduled_from else None,
        created_at=now,
    )
    appointment.doctor = doctor
    appointment.specialty = specialty
    session.add(appointment)
    await session.flush()
    note = t("agenda.over_cap_note") if beyond_cap else ""
    _record(session, appointment, None, channel=channel, actor_id=actor_id, note=note)
    if beyond_cap:
        await audit.record(
            session,
            await session.get_one(User, actor_id),
            AuditAction.BOOKED_OVER_CAP,
            patient_id=patient_id,
            appointment_id=appointment.id,
            specialty_id=specialty.id,
        )
    return appointment


def _check_requester(actor_id: int | None, *, self_service: bool, over_cap: bool) -> None:
    """Only staff, named, may book beyond the cap."""
    if over_cap and (self_service or actor_id is None):
        raise ValueError("only a staff member may book beyond the cap")


async def book(
    db: Database,
    rules: BookingRules,
    *,
    patient_id: int,
    doctor_id: int,
    starts_at: datetime,
    channel: str,
    self_service: bool,
    actor_id: int | None = None,
    over_cap: bool = False,
    specialty_id: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Book a free slot (as offered by `find_slots`) in `specialty_id` (when the doctor
    serves it; else the doctor's first specialty); SlotTaken when someone holds it,
    SlotUnavailable (a SlotTaken) when it is not bookable. Booking the same patient, doctor
    and time again returns the existing appointment.

    `self_service`: the patient books on their own (the bot, the portal): TooManyChanges
    beyond their pace, ContactNotVerified without a verified contact. Everyone gets
    CapReached at the specialty's cap, except staff (`actor_id`) booking `over_cap`."""
    _check_requester(actor_id, self_service=self_service, over_cap=over_cap)
    now = now or utcnow()
    if self_service:
        await rules.check_pace(patient_id)
    try:
        async with db.session() as session:
            appointment = await _book_in(
                session,
                rules,
                patient_id=patient_id,
                doctor_id=doctor_id,
                starts_at=starts_at,
                channel=channel,
                actor_id=actor_id,
                self_service=self_service,
                over_cap=over_cap,
                now=now,
                specialty_id=specialty_id,
            )
    except IntegrityError as exc:
        # The unique index caught a concurrent booking of the same slot.
        raise SlotTaken(doctor_id=doctor_id, starts_at=starts_at) from exc
    if self_service:
        await rules.count_change(patient_id)
    log.info("appointment %s booked via %s", appointment.id, channel)
    return appointment


async def cancel(
    db: Database,
    appointment_id: int,
    *,
    channel: str,
    actor_id: int | None = None,
    reason: str = "",
    paced_by: BookingRules | None = None,
    notify_patient: bool = False,
    now: datetime | None = None,
) -> Appointment:
    """Cancel an upcoming appointment (again: no change) and its unsent reminders.
    `paced_by`: the patient cancels on their own, within these rules' pace (TooManyChanges).
    `notify_patient`: staff cancelled it, the patient is told."""
    now = now or utcnow()
    async with db.session() as session:
        appointment = await _lock_appointment(session, appointment_id)
        if appointment.status != AppointmentStatus.CANCELLED:
            _require_future(appointment, str(AppointmentStatus.CANCELLED), now)
            if paced_by is not None:
                await paced_by.check_pace(appointment.patient_id)
        changed = _change(
            session,
            appointment,
            AppointmentStatus.CANCELLED,
            channel=channel,
            actor_id=actor_id,
            note=reason,
        )
        if changed:
            await _cancel_unsent_reminders(session, appointment.id)
            if notify_patient:
                await _notify(
                    session, appointment.id, ReminderKind.CANCELLED, actor_id=actor_id, now=now
                )
    if changed and paced_by is not None:
        await paced_by.count_change(appointment.patient_id)
    return appointment


async def reschedule(
    db: Database,
    rules: BookingRules,
    appointment_id: int,
    *,
    starts_at: datetime,
    channel: str,
    self_service: bool,
    doctor_id: int | None = None,
    actor_id: int | None = None,
    over_cap: bool = False,
    notify_patient: bool = False,
    now: datetime | None = None,
) -> Appointment:
    """Move an upcoming appointment: the old one is cancelled (with its unsent reminders)
    and the NEW one, linked by `rescheduled_from_id`, is returned. All or nothing: when the
    new slot is taken the old appointment stays as it was. The new one is held to the cap
    and, when the patient moves it on their own (`self_service`), to their pace, as `book`
    is (a move within a specialty never reaches the cap: the old one is no longer counted).
    `notify_patient`: staff moved it, the patient is told the new time."""
    _check_requester(actor_id, self_service=self_service, over_cap=over_cap)
    now = now or utcnow()
    try:
        async with db.session() as session:
            old = await _lock_appointment(session, appointment_id)
            if old.status not in ACTIVE_APPOINTMENT_STATUSES:
                raise InvalidTransition(old, "remarcar")
            _require_future(old, "remarcar", now)
            if self_service:
                await rules.check_pace(old.patient_id)
            _change(session, old, AppointmentStatus.CANCELLED, channel=channel, actor_id=actor_id)
            await _cancel_unsent_reminders(session, old.id)
            # The old booking must be inactive in the database before the new one is
            # inserted, or moving within its own slot would trip the unique index.
            await session.flush()
            new = await _book_in(
                session,
                rules,
                patient_id=old.patient_id,
                doctor_id=doctor_id or old.doctor_id,
                starts_at=starts_at,
                channel=channel,
                actor_id=actor_id,
                self_service=self_service,
                over_cap=over_cap,
                now=now,
                rescheduled_from=old,
            )
            if notify_patient:
                await _notify(session, new.id, ReminderKind.RESCHEDULED, actor_id=actor_id, now=now)
    except IntegrityError as exc:
        raise SlotTaken(doctor_id=doctor_id, starts_at=starts_at) from exc
    if self_service:
        await rules.count_change(new.patient_id)
    return new


async def confirm(
    db: Database,
    appointment_id: int,
    *,
    channel: str,
    actor_id: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """The patient will come (again: no change). InvalidTransition once cancelled, past or
    attended; `exc.current` tells what it is now (e.g. cancelada after a reschedule)."""
    now = now or utcnow()
    async with db.session() as session:
        appointment = await _lock_appointment(session, appointment_id)
        if appointment.status != AppointmentStatus.CONFIRMED:
            _require_future(appointment, str(AppointmentStatus.CONFIRMED), now)
        _change(
            session,
            appointment,
            AppointmentStatus.CONFIRMED,
            channel=channel,
            actor_id=actor_id,
        )
    return appointment


async def mark_attendance(
    db: Database,
    appointment_id: int,
    *,
    attended: bool,
    actor_id: int,
    channel: str,
    now: datetime | None = None,
) -> Appointment:
    """Front desk: the patient came (realizada) or did not (faltou), once the time came."""
    now = now or utcnow()
    target = AppointmentStatus.DONE if attended else AppointmentStatus.NO_SHOW
    async with db.session() as session:
        appointment = await _lock_appointment(session, appointment_id)
        if appointment.starts_at > now:
            raise InvalidTransition(appointment, str(target))
        if _change(session, appointment, target, channel=channel, actor_id=actor_id):
            await _cancel_unsent_reminders(session, appointment.id)
    return appointment


async def upcoming_for_patient(
    session: AsyncSession, patient_id: int, *, now: datetime
) -> list[Appointment]:
    """The patient's active appointments from `now` on, soonest first (doctor and
    specialty loaded)."""
    query = (
        select(Appointment)
        .where(
            Appointment.patient_id == patient_id,
            Appointment.status.in_(ACTIVE_APPOINTMENT_STATUSES),
            Appointment.starts_at >= now,
        )
        .order_by(Appointment.starts_at, Appointment.id)
        .options(*_with_names())
    )
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True)
class BlockedTime:
    """A new block and the active appointments it overlaps (left as they are)."""

    exception: ScheduleException
    appointments: list[Appointment]


def _inside(exception: ScheduleException) -> Select[Appointment]:
    """The active appointments overlapping a block, soonest first, with their patient."""
    query = (
        select(Appointment)
        .where(
            Appointment.status.in_(ACTIVE_APPOINTMENT_STATUSES),
            Appointment.starts_at < exception.ends_at,
            Appointment.ends_at > exception.starts_at,
        )
        .order_by(Appointment.starts_at, Appointment.id)
        .options(*_with_names(), selectinload(Appointment.patient))
    )
    if exception.doctor_id is not None:
        query = query.where(Appointment.doctor_id == exception.doctor_id)
    return query


async def block_time(
    db: Database,
    *,
    doctor_id: int,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    now: datetime | None = None,
) -> BlockedTime:
    """Block a doctor's time from `starts_at` to `ends_at` (leave, a meeting...). Locks the
    doctor like `book`, so a booking either lands before (and is reported here) or sees the
    block."""
    now = now or utcnow()
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidBlock("agenda.error.block_reason")
    if ends_at <= starts_at or ends_at <= now or ends_at - starts_at > MAX_BLOCK:
        raise InvalidBlock("agenda.error.block_range")
    async with db.session() as session:
        doctor = await _lock_doctor(session, doctor_id)
        if doctor is None:
            raise InvalidBlock("agenda.error.no_doctor")
        exception = ScheduleException(
            doctor_id=doctor_id, starts_at=starts_at, ends_at=ends_at, reason=reason
        )
        session.add(exception)
        inside = list((await session.execute(_inside(exception))).scalars())
        await session.flush()
    log.info("doctor %s blocked from %s to %s", doctor_id, starts_at, ends_at)
    return BlockedTime(exception, inside)


async def notify_blocked(
    db: Database, exception_id: int, *, actor_id: int, now: datetime | None = None
) -> BlockedTime:
    """The desk's "avisar e remarcar": tell each patient whose upcoming appointment lies inside the
    block that it must change (the notice offers to reschedule with the bot; the desk may
    move it too). Each is told once, however often this is asked; returns the appointments
    inside the block."""
    now = now or utcnow()
    async with db.session() as session:
        exception = await session.get(ScheduleException, exception_id)
        if exception is None:
            raise BlockNotFound(exception_id=exception_id)
        # Locked like any change to them, so a cancellation or move serialises with this.
        query = (
            _inside(exception).where(Appointment.starts_at > now).with_for_update(of=Appointment)
        )
        inside = list((await session.execute(query)).scalars())
        for appointment in inside:
            await _notify(session, appointment.id, ReminderKind.BLOCKED, actor_id=actor_id, now=now)
    log.info("block %s: %s patients to notify", exception_id, len(inside))
    return BlockedTime(exception, inside)


async def unblock_time(db: Database, exception_id: int) -> ScheduleException:
    """Remove a stored block: its times are offered again."""
    async with db.session() as session:
        exception = await session.get(ScheduleException, exception_id, with_for_update=True)
        if exception is None:
            raise BlockNotFound(exception_id=exception_id)
        await session.delete(exception)
    return exception
