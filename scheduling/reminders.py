"""Appointment reminders, delivered exactly once.

When: each appointment gets one durable outbox row (`Reminder`, unique per appointment and
offset) per configured offset (`REMINDER_OFFSETS`, default "24h,2h@24h": 24 h before, and 2 h
before when booked more than 24 h ahead). Nobody is reminded between 21h and 8h clinic time: a
reminder that would fall there moves to 8h, or to 20h the evening before when 8h would leave
less than an hour before the appointment. The worker plans the rows (`plan_reminders`) shortly
after a booking and sends the due ones (`dispatch_due`); staff send one at once with
`send_now`, recorded the same way.

Where: the patient's preferred channel first, then `FALLBACK_ORDER`, among the channels the
patient has an identity on and this process has a Sender for — the channels they wrote from,
and their proved phone (WhatsApp template, SMS) and verified e-mail even if they never wrote
(`messaging.identities.contact_identities`); a channel whose delivery fails
passes the reminder to the next one. The message goes into the identity's open conversation
(a new one if there is none) as a bot message with Confirmar / Remarcar / Cancelar buttons, so
the patient's tap is trusted and reaches the bot. It carries `template` (purpose "reminder":
the clinic's approved reminder template from the registry, `messaging.templates`, else the
channel's configured one, `lembrete_consulta` by default; parameters: first name, clinic,
date, time, professional) for channels outside their messaging window, and an .ics for
e-mail.

Exactly once. Workers claim due rows with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL;
SQLite has one writer at a time), which a heartbeat renews while the worker lives, so a dead
worker's rows are taken over `LEASE` after it stopped. Before calling the provider a worker
records the outbound message and links it to the reminder in one transaction; the message id
is the idempotency key the Sender passes to its provider. Reminders are bulk sends: they wait
for their slot under the channel's rate cap before the attempt is claimed
(`messaging.outbound.deliver`). A worker killed mid-send leaves the row `sending` with a
pending message; once the lease expires another worker takes it over and:
  - a message already marked sent is not sent again (the reminder is marked sent);
  - a message whose attempt was never claimed (its worker died before the send started, e.g.
    while waiting for a slot) is delivered now: it cannot have gone out;
  - a message whose attempt was claimed is delivered again under the same id only if its
    Sender declares `idempotent = True` (the provider deduplicates by that key); otherwise it
    may have gone out, so it is not repeated and the reminder is marked failed
    (`uncertain_delivery`): at most one delivery.
Cancelling, rescheduling or recording attendance cancels unsent rows in the same transaction,
and every send re-checks the appointment under its lock, so an inactive or past appointment is
never reminded.

Notices of changes staff made (`Reminder.kind` other than reminder: the appointment cancelled,
moved, or inside time the doctor blocked; queued by scheduling.appointments) are rows of this
same outbox, due at once: they go out the same way, exactly once, on the same channels, with a
template of their own for channels outside their window (`NOTICE_TEMPLATES`), and are never
dropped for the reminders opt-out (they are about an appointment the patient counts on), nor
for quiet hours: one that 8h would make too late goes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.catalog import t
from core.context import Context
from core.errors import Conflict
from core.events import message_event
from core.logs import log_failure
from messaging.history import open_conversation, record_outbound
from messaging.identities import contact_identities
from messaging.outbound import deliver
from models import (
    ACTIVE_APPOINTMENT_STATUSES,
    Appointment,
    AppointmentStatus,
    AuthorKind,
    ChannelIdentity,
    ClinicProfile,
    Conversation,
    DeliveryStatus,
    Doctor,
    Message,
    PatientProfile,
    Reminder,
    ReminderKind,
    ReminderStatus,
    TemplatePurpose,
    User,
    utcnow,
)
from scheduling.agenda import CLINIC_TZ, to_local
from scheduling.appointments import AppointmentNotFound

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

QUIET_STARTS = time(21)
QUIET_ENDS = time(8)
# Where a reminder pushed out of the night goes when the morning would be too late.
EVENING_SEND = time(20)
MIN_LEAD = timedelta(hours=1)
# Two planned reminders closer than this are one reminder too many.
MIN_GAP = timedelta(hours=1)
# How long a claim holds without its worker's heartbeat (renewed every third of it).
LEASE = timedelta(seconds=30)
BATCH = 10
MAX_ATTEMPTS = 5
FALLBACK_ORDER = (
    "whatsapp",
    "twilio",
    "sms",
    "telegram",
    "messenger",
    "instagram",
    "email",
    "webchat",
)
TEMPLATE_LANGUAGE = "pt_BR"
# The approved templates of the change notices, by kind: the registry's purpose, and the
# WhatsApp Cloud name sent when the registry has none. Parameters: first name, clinic, date,
# time, professional; a move gives the old date and time, then the new.
NOTICE_TEMPLATES = {
    ReminderKind.CANCELLED: (TemplatePurpose.APPOINTMENT_CANCELLED, "consulta_cancelada"),
    ReminderKind.RESCHEDULED: (TemplatePurpose.APPOINTMENT_RESCHEDULED, "consulta_remarcada"),
    ReminderKind.BLOCKED: (TemplatePurpose.APPOINTMENT_BLOCKED, "consulta_a_remarcar"),
}
_DELIVERED = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ)


class ReminderNotSent(Conflict):
    """A staff-requested reminder did not go out (409); `reason` is one of the codes stored
    in `Reminder.error`, and `code` its catalog key `reminder.reason.<reason>`."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"reminder.reason.{reason}")
        self.reason = reason


# --- When ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offset:
    """Remind `before` the appointment; with `min_lead`, only if booked more than that ahead."""

    before: timedelta
    min_lead: timedelta | None = None

    @property
    def minutes(self) -> int:
        return int(self.before.total_seconds() // 60)


_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"bad duration {text!r} in REMINDER_OFFSETS: use e.g. 30m, 2h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@lru_cache(maxsize=8)
def parse_offsets(spec: str) -> tuple[Offset, ...]:
    """`REMINDER_OFFSETS`: comma-separated `<before>` or `<before>@<booked more than ahead>`,
    with units m, h, d. "24h,2h@24h" = 24 h before; and 2 h before if booked > 24 h ahead."""
    offsets = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        before, at, lead = item.partition("@")
        offsets.append(Offset(_duration(before), _duration(lead) if at else None))
    return tuple(offsets)


def is_quiet(moment: datetime) -> bool:
    wall = to_local(moment).time()
    return wall >= QUIET_STARTS or wall < QUIET_ENDS


def _at(day: date, wall: time) -> datetime:
    return datetime.combine(day, wall, CLINIC_TZ)


def end_of_quiet(moment: datetime) -> datetime:
    """`moment` itself outside quiet hours, else the 8h that ends them (clinic time)."""
    if not is_quiet(moment):
        return moment
    local = to_local(moment)
    day = local.date() + timedelta(days=1) if local.time() >= QUIET_STARTS else local.date()
    return _at(day, QUIET_ENDS)


def reminder_due(starts_at: datetime, before: timedelta) -> datetime:
    """When to remind `before` an appointment, moved out of quiet hours."""
    due = starts_at - before
    if not is_quiet(due):
        return due
    morning = end_of_quiet(due)
    if morning <= starts_at - MIN_LEAD:
        return morning
    local = to_local(due)
    evening = local.date() if local.time() >= QUIET_STARTS else local.date() - timedelta(days=1)
    return _at(evening, EVENING_SEND)


def plan(
    starts_at: datetime, booked_at: datetime, offsets: tuple[Offset, ...]
) -> list[tuple[int, datetime]]:
    """(offset minutes, due) of each reminder an appointment gets; none that would be due
    before it was booked or within MIN_GAP of another one."""
    planned: list[tuple[int, datetime]] = []
    for offset in offsets:
        if offset.min_lead is not None and starts_at - booked_at <= offset.min_lead:
            continue
        due = reminder_due(starts_at, offset.before)
        if due <= booked_at or any(abs(due - other) < MIN_GAP for _, other in planned):
            continue
        planned.append((offset.minutes, due))
    return planned


async def plan_reminders(ctx: Context, *, clock: Clock | None = None, batch: int = 200) -> int:
    """Create the reminder rows of newly booked appointments; returns how many appointments
    were planned. Safe to run in several workers at once."""
    clock = clock or utcnow
    offsets = parse_offsets(ctx.settings.reminder_offsets)
    planned = 0
    while True:
        now = clock()
        async with ctx.db.session() as session:
            query = (
                select(Appointment)
                .where(Appointment.reminders_planned_at.is_(None))
                .order_by(Appointment.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
            appointments = (await session.execute(query)).scalars().all()
            if not appointments:
                return planned
            existing = await session.execute(
                select(Reminder.appointment_id, Reminder.offset_minutes).where(
                    Reminder.appointment_id.in_([a.id for a in appointments]),
                    Reminder.kind == ReminderKind.REMINDER,
                )
            )
            taken = set(existing.all())
            for appointment in appointments:
                appointment.reminders_planned_at = now
                if appointment.status not in ACTIVE_APPOINTMENT_STATUSES:
                    continue
                for minutes, due in plan(appointment.starts_at, appointment.created_at, offsets):
                    if (appointment.id, minutes) not in taken:
                        session.add(
                            Reminder(
                                appointment_id=appointment.id, offset_minutes=minutes, due_at=due
                            )
                        )
        planned += len(appointments)


# --- What ----------------------------------------------------------------------------------


def _payload(intent: str, appointment_id: int) -> str:
    entity = json.dumps({"appointment_id": str(appointment_id)}, separators=(",", ":"))
    return f"/{intent}{entity}"


def reminder_buttons(appointment_id: int) -> list[dict[str, str]]:
    """The reply buttons; the bot handles these intents with the appointment id entity."""
    return [
        {
            "title": t("reminder.button.confirm"),
            "payload": _payload("confirmar_presenca", appointment_id),
        },
        {
            "title": t("reminder.button.reschedule"),
            "payload": _payload("remarcar_consulta", appointment_id),
        },
        {
            "title": t("reminder.button.cancel"),
            "payload": _payload("cancelar_consulta", appointment_id),
        },
    ]


def _when(starts_at: datetime, now: datetime) -> str:
    local, today = to_local(starts_at), to_local(now).date()
    values = {
        "weekday": t(f"reminder.weekday.{local.weekday()}"),
        "date": local.strftime("%d/%m"),
        "time": local.strftime("%H:%M"),
    }
    if local.date() == today:
        return t("reminder.when_today", **values)
    if local.date() == today + timedelta(days=1):
        return t("reminder.when_tomorrow", **values)
    return t("reminder.when_later", **values)


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _ics_fold(line: str) -> str:
    """RFC 5545 §3.1: lines longer than 75 octets continue on lines starting with a space."""
    encoded, parts = line.encode(), list[str]()
    while len(encoded) > 75:
        cut = 75 if not parts else 74
        while cut and (encoded[cut] & 0xC0) == 0x80:  # never split a UTF-8 character
            cut -= 1
        parts.append(encoded[:cut].decode())
        encoded = encoded[cut:]
    parts.append(encoded.decode())
    return "\r\n ".join(parts)


def ics_event(
    appointment: Appointment, doctor_name: str, clinic: str, address: str, now: datetime
) -> str:
    """An iCalendar event for the appointment (no specialty: minimal health data)."""

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//omniclinica//lembretes//PT-BR",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:consulta-{appointment.id}@omniclinica",
        f"DTSTAMP:{stamp(now)}",
        f"DTSTART:{stamp(appointment.starts_at)}",
        f"DTEND:{stamp(appointment.ends_at)}",
        f"SUMMARY:{_ics_text(t('reminder.ics.summary', clinic=clinic, doctor=doctor_name))}",
        f"LOCATION:{_ics_text(address)}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(_ics_fold(line) for line in lines) + "\r\n"


def appointment_ics(
    appointment: Appointment, doctor_name: str, clinic: ClinicProfile | None, now: datetime
) -> str:
    """The appointment's calendar file, at the clinic's address (a reminder by e-mail carries
    it; the portal offers it for download)."""
    clinic_name = clinic.name if clinic else t("reminder.clinic_fallback")
    address = str((clinic.data or {}).get("endereco", "")) if clinic else ""
    return ics_event(appointment, doctor_name, clinic_name, address, now)


@dataclass(frozen=True)
class ReminderContent:
    text: str
    buttons: list[dict[str, str]]
    template: dict[str, Any]
    attachments: list[dict[str, Any]]


@dataclass(frozen=True)
class _Addressed:
    """How a message about an appointment greets the patient and names the clinic."""

    first_name: str
    clinic_name: str
    greeting: str

    @classmethod
    def of(cls, patient_name: str | None, clinic: ClinicProfile | None) -> _Addressed:
        first_name = (patient_name or "").split(" ")[0]
        greeting = (
            t("reminder.greeting", name=first_name)
            if first_name
            else t("reminder.greeting_anonymous")
        )
        clinic_name = clinic.name if clinic else t("reminder.clinic_fallback")
        return cls(first_name, clinic_name, greeting)

    def template(
        self, purpose: TemplatePurpose, moments: Sequence[datetime], doctor_name: str, **extra: str
    ) -> dict[str, Any]:
        """An approved template for `purpose` (the registry's, `messaging.templates.resolve`)
        and its parameters: first name, clinic, the date and time of each moment (clinic
        time), professional."""
        parameters = [self.first_name or t("reminder.patient_fallback"), self.clinic_name]
        for moment in moments:
            local = to_local(moment)
            parameters += [local.strftime("%d/%m/%Y"), local.strftime("%H:%M")]
        return {"purpose": str(purpose), **extra, "parameters": [*parameters, doctor_name]}


def reminder_content(
    appointment: Appointment,
    *,
    patient_name: str | None,
    doctor_name: str,
    clinic: ClinicProfile | None,
    channel: str,
    now: datetime,
) -> ReminderContent:
    """Date, time, clinic and professional only: a specialty on a lock screen is health data."""
    to = _Addressed.of(patient_name, clinic)
    text = t(
        "reminder.text",
        greeting=to.greeting,
        clinic=to.clinic_name,
        when=_when(appointment.starts_at, now),
        doctor=doctor_name,
    )
    template = to.template(TemplatePurpose.REMINDER, [appointment.starts_at], doctor_name)
    attachments = _calendar_file(appointment, doctor_name, clinic, channel, now)
    return ReminderContent(text, reminder_buttons(appointment.id), template, attachments)


def _calendar_file(
    appointment: Appointment,
    doctor_name: str,
    clinic: ClinicProfile | None,
    channel: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """By e-mail, the appointment's .ics goes along."""
    if channel != "email":
        return []
    content = appointment_ics(appointment, doctor_name, clinic, now)
    return [{"kind": "ics", "filename": "consulta.ics", "content": content}]


def notice_content(
    kind: ReminderKind,
    appointment: Appointment,
    *,
    previous_starts_at: datetime | None,
    patient_name: str | None,
    doctor_name: str,
    clinic: ClinicProfile | None,
    channel: str,
    now: datetime,
) -> ReminderContent:
    """A change staff made, in the patient's words: what changed (the old time too, for a
    move) and what they can do now, with the buttons to do it; by e-mail, a new time comes
    with its .ics. `previous_starts_at`: where a rescheduled appointment was moved from."""
    to = _Addressed.of(patient_name, clinic)
    when = _when(appointment.starts_at, now)
    moments = [appointment.starts_at]
    buttons = reminder_buttons(appointment.id)
    if kind == ReminderKind.CANCELLED:
        buttons = []
    elif kind == ReminderKind.BLOCKED:
        buttons = buttons[1:]  # Remarcar, Cancelar
    elif previous_starts_at is not None:
        moments.insert(0, previous_starts_at)
    change = t(
        f"notice.change.{kind}",
        when=when,
        doctor=doctor_name,
        old_when=_when(moments[0], now),
    )
    text = t(
        "notice.text",
        greeting=to.greeting,
        clinic=to.clinic_name,
        change=change,
        next=t(f"notice.next.{kind}"),
    )
    purpose, name = NOTICE_TEMPLATES[kind]
    template = to.template(purpose, moments, doctor_name, name=name, language=TEMPLATE_LANGUAGE)
    attachments = (
        _calendar_file(appointment, doctor_name, clinic, channel, now)
        if kind == ReminderKind.RESCHEDULED
        else []
    )
    return ReminderContent(text, buttons, template, attachments)


async def last_reminded(
    session: AsyncSession, patient_id: int, *, now: datetime
) -> Appointment | None:
    """The upcoming, still active appointment the patient was last reminded of: what a
    typed reply to a reminder ("confirmo", "não vou poder ir") is about."""
    query = (
        select(Appointment)
        .join(Reminder, Reminder.appointment_id == Appointment.id)
        .where(
            Appointment.patient_id == patient_id,
            Appointment.status.in_(ACTIVE_APPOINTMENT_STATUSES),
            Appointment.starts_at > now,
            Reminder.status == ReminderStatus.SENT,
        )
        .order_by(Reminder.sent_at.desc(), Reminder.id.desc())
        .limit(1)
        .options(selectinload(Appointment.doctor), selectinload(Appointment.specialty))
    )
    return (await session.execute(query)).scalar_one_or_none()


# --- Where ---------------------------------------------------------------------------------


def channel_order(
    preferred: str | None, identities: list[ChannelIdentity], available: set[str]
) -> list[ChannelIdentity]:
    """The identities to try, best first: preferred channel, then FALLBACK_ORDER, then any
    other channel; on one channel, the identity the patient wrote from last."""
    by_channel: dict[str, ChannelIdentity] = {}
    for identity in sorted(
        identities, key=lambda i: (i.last_inbound_at is not None, i.last_inbound_at, i.id)
    ):
        by_channel[identity.channel] = identity
    order = [preferred] if preferred else []
    order += [c for c in FALLBACK_ORDER if c not in order]
    order += sorted(c for c in by_channel if c not in order)
    return [by_channel[c] for c in order if c in by_channel and c in available]


# What a failed reminder says about the patient: nothing could carry it to them.
_NOWHERE = ("no_channel", "undeliverable")


def reached_nowhere(appointment: Appointment, reminders: Sequence[Reminder]) -> bool:
    """The active appointment's reminders all failed to find a channel that took them (none
    was sent): the desk should phone the patient."""
    if appointment.status not in ACTIVE_APPOINTMENT_STATUSES:
        return False
    return not any(r.status == ReminderStatus.SENT for r in reminders) and any(
        r.status == ReminderStatus.FAILED and (r.error or "").split(":")[0] in _NOWHERE
        for r in reminders
    )


# --- Exactly once --------------------------------------------------------------------------


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def _due_or_abandoned(now: datetime) -> Any:
    return or_(
        and_(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now),
        and_(Reminder.status == ReminderStatus.SENDING, Reminder.lease_until < now),
    )


@dataclass(frozen=True)
class Claimed:
    reminder_id: int
    appointment_id: int


async def _settle_and_claim(
    ctx: Context, worker: str, now: datetime, lease: timedelta, *, sent: list[int], wanted: int
) -> list[Claimed]:
    """Mark the rows this worker delivered as sent and claim up to `wanted` more, in one
    transaction (a commit per reminder, or one to settle and one to claim, would be most of
    the database work of a paced send)."""
    async with ctx.db.session() as session:
        await _mark_sent(session, sent, now)
        return await _claim(session, worker, now, lease, wanted)


async def _claim(
    session: AsyncSession, worker: str, now: datetime, lease: timedelta, batch: int
) -> list[Claimed]:
    if not batch:
        return []
    query = (
        select(Reminder.id, Reminder.appointment_id)
        .where(_due_or_abandoned(now))
        .order_by(Reminder.due_at, Reminder.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    claimed = [Claimed(*row) for row in (await session.execute(query)).all()]
    if claimed:
        await session.execute(
            update(Reminder)
            .where(Reminder.id.in_([c.reminder_id for c in claimed]))
            .values(
                status=ReminderStatus.SENDING,
                lease_owner=worker,
                lease_until=now + lease,
                attempts=Reminder.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
    return claimed


async def _mark_sent(session: AsyncSession, reminder_ids: list[int], now: datetime) -> None:
    """One statement for a batch. The delivery is a fact: it wins even if the lease ran out
    meanwhile; and if the worker dies before this commits, the next claim sees the message
    sent and finishes the row (`_finish`, which this does in bulk)."""
    if not reminder_ids:
        return
    await session.execute(
        update(Reminder)
        .where(Reminder.id.in_(reminder_ids))
        .values(
            status=ReminderStatus.SENT,
            lease_owner=None,
            lease_until=None,
            error=None,
            sent_at=func.coalesce(Reminder.sent_at, now),
        )
        .execution_options(synchronize_session=False)
    )


def _finish(
    reminder: Reminder, status: ReminderStatus, now: datetime, error: str | None = None
) -> None:
    reminder.status = status
    reminder.lease_owner = None
    reminder.lease_until = None
    reminder.error = error
    if status == ReminderStatus.SENT and reminder.sent_at is None:
        reminder.sent_at = now


@dataclass(frozen=True)
class _Delivery:
    message: Message
    identity: ChannelIdentity
    conversation: Conversation
    fresh: bool


async def _superseded(session: AsyncSession, reminder: Reminder, now: datetime) -> bool:
    """An automatic reminder whose closer sibling is also due (the worker was down) is
    dropped: one reminder, the most recent, is enough."""
    if reminder.requested_by_id is not None or reminder.kind != ReminderKind.REMINDER:
        return False
    query = select(Reminder.id).where(
        Reminder.appointment_id == reminder.appointment_id,
        Reminder.kind == ReminderKind.REMINDER,
        Reminder.offset_minutes < reminder.offset_minutes,
        Reminder.requested_by_id.is_(None),
        Reminder.due_at <= now,
        Reminder.status != ReminderStatus.CANCELLED,
    )
    return (await session.execute(query.limit(1))).first() is not None


def _still_to_tell(kind: ReminderKind, appointment: Appointment, now: datetime) -> bool:
    """Nothing is said of an appointment whose time has passed; a reminder or notice of an
    appointment still on needs it still on (a cancellation notice, cancelled)."""
    if appointment.starts_at <= now:
        return False
    if kind == ReminderKind.CANCELLED:
        return appointment.status == AppointmentStatus.CANCELLED
    return appointment.status in ACTIVE_APPOINTMENT_STATUSES


async def _moved_from(session: AsyncSession, appointment: Appointment) -> datetime | None:
    if appointment.rescheduled_from_id is None:
        return None
    return await session.scalar(
        select(Appointment.starts_at).where(Appointment.id == appointment.rescheduled_from_id)
    )


async def _prepare(
    ctx: Context, claimed: Claimed, worker: str, now: datetime, lease: timedelta
) -> _Delivery | None:
    """Decide, under the appointment's and the reminder's locks, what to deliver next: the
    message to (re)deliver, or None when the reminder is finished or no longer ours."""
    async with ctx.db.session() as session:
        # Same lock order as scheduling.appointments (appointment first), so a cancellation and a
        # send serialise: whichever commits first decides.
        appointment, doctor_name = (
            await session.execute(
                select(Appointment, Doctor.name)
                .join(Doctor, Doctor.id == Appointment.doctor_id)
                .where(Appointment.id == claimed.appointment_id)
                .with_for_update(of=Appointment)
            )
        ).one()
        reminder = (
            await session.execute(
                select(Reminder).where(Reminder.id == claimed.reminder_id).with_for_update()
            )
        ).scalar_one()
        if reminder.status != ReminderStatus.SENDING or reminder.lease_owner != worker:
            return None
        message = await session.get(Message, reminder.message_id) if reminder.message_id else None
        if message is not None and message.delivery_status in _DELIVERED:
            _finish(reminder, ReminderStatus.SENT, now)
            return None
        if not _still_to_tell(reminder.kind, appointment, now):
            _finish(reminder, ReminderStatus.CANCELLED, now, "appointment_inactive")
            return None
        if await _superseded(session, reminder, now):
            _finish(reminder, ReminderStatus.CANCELLED, now, "superseded")
            return None
        if reminder.attempts > MAX_ATTEMPTS:
            _finish(reminder, ReminderStatus.FAILED, now, "too_many_attempts")
            return None
        if is_quiet(now):
            morning = end_of_quiet(now)
            too_late = morning > appointment.starts_at - MIN_LEAD
            if too_late and reminder.kind == ReminderKind.REMINDER:
                _finish(reminder, ReminderStatus.CANCELLED, now, "quiet_hours")
                return None
            if not too_late:
                _finish(reminder, ReminderStatus.PENDING, now)
                reminder.due_at = morning
                return None
            # A change the patient must know before the appointment goes even at night.
        patient, profile = (
            await session.execute(
                select(User, PatientProfile)
                .outerjoin(PatientProfile, PatientProfile.user_id == User.id)
                .where(User.id == appointment.patient_id)
            )
        ).one()
        reminding = reminder.kind == ReminderKind.REMINDER
        if reminding and profile is not None and not profile.reminders_opt_in:
            _finish(reminder, ReminderStatus.CANCELLED, now, "opted_out")
            return None
        reminder.lease_until = now + lease
        if message is not None and message.delivery_status == DeliveryStatus.PENDING:
            # A previous worker stopped between recording this message and recording its
            # outcome. Unless it never claimed the attempt, the provider may have it.
            sender = ctx.senders.get(message.channel)
            if message.attempts and not getattr(sender, "idempotent", False):
                _finish(reminder, ReminderStatus.FAILED, now, "uncertain_delivery")
                log.warning("reminder %s: delivery uncertain after a worker stopped", reminder.id)
                return None
            conversation = await session.get_one(Conversation, message.conversation_id)
            identity = await session.get_one(ChannelIdentity, conversation.channel_identity_id)
            return _Delivery(message, identity, conversation, fresh=False)
        identities = await contact_identities(session, patient, profile)
        candidates = channel_order(
            profile.preferred_channel if profile else None, identities, set(ctx.senders)
        )
        if message is not None:  # it failed: carry on after its channel
            channels = [i.channel for i in candidates]
            if message.channel in channels:
                candidates = candidates[channels.index(message.channel) + 1 :]
        if not candidates:
            reason = f"undeliverable: {message.error}" if message else "no_channel"
            _finish(reminder, ReminderStatus.FAILED, now, reason[:500])
            return None
        identity = candidates[0]
        conversation = await open_conversation(session, identity)
        clinic = (await session.execute(select(ClinicProfile).limit(1))).scalar_one_or_none()
        if reminding:
            content = reminder_content(
                appointment,
                patient_name=patient.name,
                doctor_name=doctor_name,
                clinic=clinic,
                channel=identity.channel,
                now=now,
            )
        else:
            content = notice_content(
                reminder.kind,
                appointment,
                previous_starts_at=await _moved_from(session, appointment),
                patient_name=patient.name,
                doctor_name=doctor_name,
                clinic=clinic,
                channel=identity.channel,
                now=now,
            )
        message = await record_outbound(
            session,
            conversation,
            text=content.text,
            author_kind=AuthorKind.BOT,
            buttons=content.buttons,
            template=content.template,
            attachments=content.attachments,
        )
        reminder.message_id = message.id
        reminder.channel = identity.channel
    return _Delivery(message, identity, conversation, fresh=True)


async def _dispatch(
    ctx: Context,
    claimed: Claimed,
    worker: str,
    clock: Clock,
    lease: timedelta,
    *,
    bulk: bool = True,
) -> bool:
    """Deliver one claimed reminder, falling back channel by channel; True when a channel
    took it (the caller then marks it sent). Automatic reminders are `bulk`: they take the
    channel's bulk share of its rate cap, leaving room for live replies."""
    for _ in range(len(FALLBACK_ORDER) + len(ctx.senders) + 1):
        delivery = await _prepare(ctx, claimed, worker, clock(), lease)
        if delivery is None:
            return False
        if delivery.fresh:
            await ctx.bus.publish(message_event(delivery.message, delivery.conversation))
        if await deliver(
            ctx, delivery.message, delivery.identity, delivery.conversation, bulk=bulk
        ):
            log.info("reminder %s sent on %s", claimed.reminder_id, delivery.message.channel)
            return True
    return False


async def _dispatch_logged(
    ctx: Context, claimed: Claimed, worker: str, clock: Clock, lease: timedelta
) -> bool:
    try:
        return await _dispatch(ctx, claimed, worker, clock, lease)
    except Exception as exc:
        # The row stays `sending`; after the lease another claim resolves it.
        log_failure(log, exc, "reminder %s: dispatch failed", claimed.reminder_id)
        return False


@contextlib.asynccontextmanager
async def _heartbeat(
    ctx: Context, worker: str, clock: Clock, lease: timedelta
) -> AsyncIterator[None]:
    """While the block runs, renew the lease of every row this worker holds."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            try:
                async with ctx.db.session() as session:
                    await session.execute(
                        update(Reminder)
                        .where(
                            Reminder.lease_owner == worker,
                            Reminder.status == ReminderStatus.SENDING,
                        )
                        .values(lease_until=clock() + lease)
                        .execution_options(synchronize_session=False)
                    )
            except Exception as exc:  # a missed beat only lets another worker help out
                log_failure(log, exc, "reminder leases of %s: renewal failed", worker)

    beating = asyncio.create_task(renew())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


async def dispatch_due(
    ctx: Context,
    *,
    worker_id: str | None = None,
    clock: Clock | None = None,
    lease: timedelta = LEASE,
    batch: int = BATCH,
) -> int:
    """Send every reminder that is due (and take over those whose worker died); returns
    how many rows were claimed. Up to `batch` rows are in flight at a time, and more are
    claimed as soon as half of them are done, so a paced channel never idles between
    batches; the rows sent are marked in groups of half a batch, in the transaction that
    claims the next ones."""
    worker = worker_id or default_worker_id()
    clock = clock or utcnow
    in_flight: dict[asyncio.Task[bool], int] = {}
    sent: list[int] = []
    claimed = 0
    more = True
    try:
        async with _heartbeat(ctx, worker, clock, lease):
            while True:
                wanted = batch - len(in_flight) if more and len(in_flight) <= batch // 2 else 0
                if wanted or len(sent) >= batch // 2 or (sent and not in_flight):
                    fresh = await _settle_and_claim(
                        ctx, worker, clock(), lease, sent=sent, wanted=wanted
                    )
                    sent = []
                    more = more and len(fresh) == wanted
                    claimed += len(fresh)
                    for row in fresh:
                        task = asyncio.create_task(_dispatch_logged(ctx, row, worker, clock, lease))
                        in_flight[task] = row.reminder_id
                if not in_flight:
                    break
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    reminder_id = in_flight.pop(task)
                    if task.result():
                        sent.append(reminder_id)
    finally:
        # Stopped (cancelled, or a failure to claim or mark): the rows in flight stay
        # `sending` and are taken over once their lease runs out.
        for task in in_flight:
            task.cancel()
    return claimed


async def send_now(
    ctx: Context, appointment_id: int, *, actor_id: int | None, clock: Clock | None = None
) -> Message:
    """Staff's "Enviar lembrete": a reminder now, recorded like the automatic ones (offset =
    minutes left, so a double click within a minute sends once). Raises AppointmentNotFound
    or ReminderNotSent."""
    clock = clock or utcnow
    now = clock()
    if is_quiet(now):
        raise ReminderNotSent("quiet_hours")
    worker = f"staff:{actor_id}:{uuid.uuid4().hex[:12]}"
    async with ctx.db.session() as session:
        appointment = await session.get(Appointment, appointment_id, with_for_update=True)
        if appointment is None:
            raise AppointmentNotFound(appointment_id=appointment_id)
        if appointment.status not in ACTIVE_APPOINTMENT_STATUSES or appointment.starts_at <= now:
            raise ReminderNotSent("appointment_inactive")
        minutes = max(1, math.ceil((appointment.starts_at - now).total_seconds() / 60))
        query = (
            select(Reminder)
            .where(
                Reminder.appointment_id == appointment_id,
                Reminder.kind == ReminderKind.REMINDER,
                Reminder.offset_minutes == minutes,
            )
            .with_for_update()
        )
        reminder = (await session.execute(query)).scalar_one_or_none()
        if reminder is not None and reminder.status == ReminderStatus.SENT:
            return await session.get_one(Message, reminder.message_id)
        if reminder is not None and reminder.status == ReminderStatus.SENDING:
            raise ReminderNotSent("in_progress")
        if reminder is None:
            reminder = Reminder(appointment_id=appointment_id, offset_minutes=minutes)
            session.add(reminder)
        reminder.due_at = now
        reminder.status = ReminderStatus.SENDING
        reminder.lease_owner = worker
        reminder.lease_until = now + LEASE
        reminder.attempts = (reminder.attempts or 0) + 1
        reminder.requested_by_id = actor_id
        reminder.message_id = None
        reminder.error = None
        await session.flush()
        reminder_id = reminder.id
    # A person is waiting for this one: it takes the lane's next slot, like a reply.
    claimed = Claimed(reminder_id, appointment_id)
    if await _dispatch(ctx, claimed, worker, clock, LEASE, bulk=False):
        async with ctx.db.session() as session:
            await _mark_sent(session, [reminder_id], clock())
    async with ctx.db.session() as session:
        reminder = await session.get_one(Reminder, reminder_id)
        if reminder.status != ReminderStatus.SENT:
            raise ReminderNotSent((reminder.error or "undeliverable").split(":")[0])
        return await session.get_one(Message, reminder.message_id)
