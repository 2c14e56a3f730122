"""Erasure and anonymisation of a patient's personal data (LGPD art. 16 and 18 IV/VI), on
request (the patient from the portal, confirming with the password; an admin) or when the
retention period has passed without activity (`erase_expired`, a worker job).

What goes:
- every message of the patient's history (with its delivery parts), on every channel,
  internal staff notes included, and the reception's recorded actions about them;
- the channel identities' ids, names and proved phones (the rows stay, anonymised, because
  the kept conversations point at them; a new message from the same number or account is a
  new, unknown patient), pending identity claims, login sessions;
- name, e-mail, phone, CPF, password, birth date, preferred channel on the patient's row;
- the patient's tracker in the assistant's store (`messaging.tracker_store`): their next
  conversation, if any, starts without a single slot of the old one;
- the files in their history, sent by them or by staff (`messaging.files`): rows and bytes;
- the console outbox lines sent to them (`channels.outbox`).
  (The platform keeps no other files of patients. The staff search's indexes follow the
  rows by themselves — `models.search` — so the patient is found by no old word or contact.)

What stays, and why:
- appointments with their change history and reminder rows: clinical and fiscal records the
  clinic must keep (Lei 13.787/2018 art. 6: at least 20 years; art. 16 I LGPD), linked to the
  anonymised row by its id only. Future appointments are cancelled first;
- conversations' metadata (channel, times, owner, satisfaction score), without any text:
  what the team's metrics are made of. Those still open are closed
  (`handoff.transitions.resolution.close_for_erasure`): none stays in the queue or with an
  attendant, empty;
- consent records, withdrawn: the clinic's proof that what it did was lawful (art. 8 §2);
- the audit log: the legal record of who accessed what (art. 37; Marco Civil art. 15).

A turn the assistant is running at the very moment of the erasure can still save its events
after them; the patient's row is already inactive and their channels unlinked by then, so no
message ever reaches that tracker again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.export import load_patient
from channels import outbox
from core import audit
from core.audit import AuditAction
from core.catalog import t
from core.context import Context
from handoff.transitions.resolution import close_for_erasure
from messaging.files import drop, forget_files, prune_unsent_uploads
from messaging.tracker_store import forget_senders
from messaging.verification import CODE_TTL
from models import (
    ACTIVE_APPOINTMENT_STATUSES,
    Appointment,
    AttendantAction,
    ChannelIdentity,
    Consent,
    IdentityClaim,
    LoginSession,
    Message,
    PatientProfile,
    Reminder,
    Role,
    User,
    utcnow,
)
from scheduling import appointments

log = logging.getLogger(__name__)

# How many inactive patients one run of the retention job erases (the next run goes on).
RETENTION_BATCH = 20
# The channel recorded on what the retention job changes (cancellations, withdrawals).
RETENTION_CHANNEL = "retencao"


@dataclass(frozen=True)
class Erasure:
    patient_ids: tuple[int, ...]
    tracker_events: int
    outbox_lines: int


async def erase_patient(
    ctx: Context,
    patient_id: int,
    *,
    actor: User | None,
    channel: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> Erasure:
    """Erase the patient's personal data (see the module's docstring); `actor` None when
    the retention job does it. Erasing again changes nothing more."""
    now = now or utcnow()
    async with ctx.db.session() as session:
        await load_patient(session, patient_id)  # a patient, or NotAPatient (404)
        merged = select(User.id).where(User.merged_into_id == patient_id)
        ids = (patient_id, *(await session.execute(merged)).scalars())
        upcoming = select(Appointment.id).where(
            Appointment.patient_id.in_(ids),
            Appointment.status.in_(ACTIVE_APPOINTMENT_STATUSES),
            Appointment.starts_at > now,
        )
        to_cancel = list((await session.execute(upcoming)).scalars())
    for appointment_id in to_cancel:
        await appointments.cancel(
            ctx.db,
            appointment_id,
            channel=channel,
            actor_id=actor.id if actor else None,
            reason=t("privacy.erasure_reason"),
            now=now,
        )
    async with ctx.db.session() as session:
        file_keys = await forget_files(session, ids)
        external_ids = await _anonymise(session, ids, channel=channel, now=now)
        await audit.record(
            session,
            actor,
            AuditAction.ERASURE,
            patient_id=patient_id,
            ip=ip,
            channel=channel,
            cancelled_appointments=len(to_cancel),
        )
    # After the anonymisation: the staff screens are told with the anonymised name, and no
    # message can open a new conversation for these patients any more (channels unlinked).
    await close_for_erasure(ctx, ids)
    await drop(ctx.settings, file_keys)
    events = await forget_senders(ctx.settings.rasa_tracker_url, ids)
    lines = 0
    for folder in outbox.folders_of(ctx.senders):
        lines += await outbox.forget(ids, external_ids, folder)
    log.info("patient %s erased (%s tracker events, %s outbox lines)", patient_id, events, lines)
    return Erasure(ids, events, lines)


async def _anonymise(
    session: AsyncSession, ids: Sequence[int], *, channel: str, now: datetime
) -> list[str]:
    """Remove or anonymise what the database holds of these patients; the channel ids they
    had (to find what the outbox sent them)."""
    messages = select(Message.id).where(Message.patient_id.in_(ids))
    await session.execute(
        update(Reminder).where(Reminder.message_id.in_(messages)).values(message_id=None)
    )
    await session.execute(delete(Message).where(Message.patient_id.in_(ids)))
    await session.execute(delete(AttendantAction).where(AttendantAction.patient_id.in_(ids)))
    await session.execute(
        delete(IdentityClaim).where(
            or_(IdentityClaim.claimant_id.in_(ids), IdentityClaim.owner_id.in_(ids))
        )
    )
    await session.execute(delete(LoginSession).where(LoginSession.user_id.in_(ids)))
    identities = list(
        (
            await session.execute(
                select(ChannelIdentity).where(ChannelIdentity.patient_id.in_(ids))
            )
        ).scalars()
    )
    external_ids = [identity.external_id for identity in identities]
    for identity in identities:
        identity.external_id = f"apagado-{identity.id}"
        identity.display_name = None
        identity.details = {}
        identity.verified_phone = None
    await session.execute(
        update(Consent)
        .where(Consent.patient_id.in_(ids), Consent.withdrawn_at.is_(None))
        .values(withdrawn_at=now, withdrawn_channel=channel)
    )
    await session.execute(
        update(PatientProfile)
        .where(PatientProfile.user_id.in_(ids))
        .values(
            preferred_channel=None,
            phone_match_key=None,
            birth_date=None,
            notes=None,
            lgpd_consent_at=None,
            reminders_opt_in=False,
        )
    )
    await session.execute(
        update(User)
        .where(User.id.in_(ids))
        .values(
            name=t("privacy.anonymised_name"),
            email=None,
            phone_e164=None,
            cpf=None,
            password_hash=None,
            is_active=False,
            erased_at=now,
        )
    )
    return external_ids


async def expired_patients(session: AsyncSession, cutoff: datetime, limit: int) -> list[int]:
    """Patients not erased yet with no activity since `cutoff`: account created and last
    changed before it, no message and no appointment (held or changed) since."""
    recent_message = exists().where(Message.patient_id == User.id, Message.created_at >= cutoff)
    recent_appointment = exists().where(
        Appointment.patient_id == User.id,
        or_(Appointment.starts_at >= cutoff, Appointment.updated_at >= cutoff),
    )
    query = (
        select(User.id)
        .where(
            User.role == Role.PATIENT,
            User.erased_at.is_(None),
            User.merged_into_id.is_(None),
            User.created_at < cutoff,
            User.updated_at < cutoff,
            ~recent_message,
            ~recent_appointment,
        )
        .order_by(User.id)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def erase_expired(ctx: Context, *, now: datetime | None = None) -> list[int]:
    """The retention job: erase the patients inactive for `RETENTION_DAYS` (a batch per
    run), and drop outbox lines past the period, one-time codes past their lifetime and
    files staff uploaded but never sent.
    The patients erased."""
    now = now or utcnow()
    days = ctx.settings.retention_days
    cutoff = now - timedelta(days=days) if days > 0 else None
    erased: list[int] = []
    if cutoff is not None:
        async with ctx.db.session() as session:
            expired = await expired_patients(session, cutoff, RETENTION_BATCH)
        for patient_id in expired:
            await erase_patient(
                ctx,
                patient_id,
                actor=None,
                channel=RETENTION_CHANNEL,
                now=now,
            )
            erased.append(patient_id)
    await prune_unsent_uploads(ctx)
    for folder in outbox.folders_of(ctx.senders):
        await outbox.prune(
            before=cutoff or datetime.min.replace(tzinfo=now.tzinfo),
            sealed_before=now - CODE_TTL,
            folder=folder,
        )
    return erased
