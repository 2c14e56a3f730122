"""The patient's card in the staff workspace: the record (name, contacts, masked CPF,
preferences, notes), the channels the patient is known on, their appointments and the merges
that touched the record; and staff edits of it.

Who may read or edit a card is core.access's (`may_edit_patient`: staff who see the patient's
whole history). Every read and every edit is audit-logged in its own transaction, the edit
with the names of the fields it changed (never their values). Contacts follow the rules of
the rest of accounts/: a phone or e-mail staff type proves nothing — a new phone matches no
channel identity and gets no one-time code until the patient proves it, a new e-mail links
nothing until its owner follows the verification link — and the e-mail of a patient who logs
in is their login, which only they change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from accounts import consent
from accounts.patients import PatientError, change_phone, prefer_channel, reachable_channels
from core import access, audit
from core.audit import AuditAction
from core.contacts import normalize_cpf, normalize_email
from core.context import Context
from core.errors import Conflict, Forbidden, NotFound
from models import (
    ChannelIdentity,
    Conversation,
    ConversationLabel,
    PatientMerge,
    PatientProfile,
    Role,
    User,
)
from scheduling.agenda import AgendaItem, patient_history

STAFF_CHANNEL = "staff"  # where a consent change made by staff is recorded as given
MAX_NOTES_CHARS = 2000
APPOINTMENTS_SHOWN = 50
EDITABLE = frozenset(
    {"name", "phone", "email", "cpf", "preferred_channel", "reminders_opt_in", "notes"}
)


class NotAPatient(NotFound):
    code = "card.error.not_a_patient"


class MayNotEdit(Forbidden):
    code = "card.error.forbidden"


@dataclass(frozen=True)
class Card:
    """What the card shows (patient profile loaded)."""

    patient: User
    identities: list[ChannelIdentity]
    reachable: list[str]
    appointments: list[AgendaItem]
    merges: list[PatientMerge]
    # The labels on any of the patient's conversations.
    label_ids: list[int]


async def load_patient_for(session: AsyncSession, actor: User, patient_id: int) -> User:
    """The patient (profile loaded) if `actor` may read and edit their card."""
    query = select(User).where(User.id == patient_id).options(selectinload(User.patient_profile))
    patient = (await session.execute(query)).scalar_one_or_none()
    if patient is None or patient.role != Role.PATIENT:
        raise NotAPatient()
    if not await access.may_edit_patient(session, actor, patient_id):
        raise MayNotEdit()
    return patient


async def read_card(ctx: Context, actor: User, patient_id: int, *, ip: str | None) -> Card:
    async with ctx.db.session() as session:
        patient = await load_patient_for(session, actor, patient_id)
        identities = (
            await session.execute(
                select(ChannelIdentity)
                .where(ChannelIdentity.patient_id == patient_id)
                .order_by(ChannelIdentity.id)
            )
        ).scalars()
        merges = (
            await session.execute(
                select(PatientMerge)
                .where(
                    or_(PatientMerge.source_id == patient_id, PatientMerge.target_id == patient_id)
                )
                .order_by(PatientMerge.id)
            )
        ).scalars()
        card = Card(
            patient=patient,
            identities=list(identities),
            reachable=[]
            if patient.erased_at
            else await reachable_channels(ctx, session, patient_id),
            appointments=await patient_history(session, patient_id, limit=APPOINTMENTS_SHOWN),
            merges=list(merges),
            label_ids=list(
                (
                    await session.execute(
                        select(ConversationLabel.label_id)
                        .join(Conversation, Conversation.id == ConversationLabel.conversation_id)
                        .where(Conversation.patient_id == patient_id)
                        .distinct()
                        .order_by(ConversationLabel.label_id)
                    )
                ).scalars()
            ),
        )
        await audit.record(
            session, actor, AuditAction.READ_PATIENT_CARD, patient_id=patient_id, ip=ip
        )
    return card


async def edit_record(
    ctx: Context, actor: User, patient_id: int, changes: Mapping[str, Any], *, ip: str | None
) -> list[str]:
    """Apply staff's `changes` to the record (any of EDITABLE), all or none; the names of
    the fields that changed value, which the audit log keeps."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise PatientError("error.bad_parameter", name=sorted(unknown)[0])
    try:
        async with ctx.db.session() as session:
            patient = await load_patient_for(session, actor, patient_id)
            if patient.merged_into_id is not None or patient.erased_at is not None:
                raise Conflict("card.error.record_closed")
            changed = await _apply(ctx, session, patient, changes)
            if changed:
                await session.flush()  # a taken e-mail or CPF fails here, before the audit
                await audit.record(
                    session,
                    actor,
                    AuditAction.PATIENT_UPDATED,
                    patient_id=patient_id,
                    ip=ip,
                    fields=changed,
                )
    except IntegrityError:
        raise Conflict("card.error.contact_in_use") from None
    return changed


async def _apply(
    ctx: Context, session: AsyncSession, patient: User, changes: Mapping[str, Any]
) -> list[str]:
    profile = patient.patient_profile
    if profile is None:
        profile = patient.patient_profile = PatientProfile(user_id=patient.id)
    before = _values(patient, profile)
    if "name" in changes:
        name = changes["name"]
        if not isinstance(name, str) or not name.strip():
            raise PatientError("error.name_required")
        patient.name = name.strip()
    if "phone" in changes:
        change_phone(patient, changes["phone"])
    if "email" in changes:
        _change_email(patient, changes["email"])
    if "cpf" in changes:
        cpf = normalize_cpf(changes["cpf"]) if isinstance(changes["cpf"], str) else None
        if cpf is None:
            raise PatientError("error.invalid_cpf")
        patient.cpf = cpf
    if "notes" in changes:
        profile.notes = _notes(changes["notes"])
    if "preferred_channel" in changes:
        await prefer_channel(ctx, session, patient.id, changes["preferred_channel"])
    if "reminders_opt_in" in changes:
        await _reminders(session, patient.id, changes["reminders_opt_in"])
    after = _values(patient, profile)
    return [field for field in sorted(EDITABLE) if before[field] != after[field]]


def _values(patient: User, profile: PatientProfile) -> dict[str, Any]:
    return {
        "name": patient.name,
        "phone": patient.phone_e164,
        "email": patient.email,
        "cpf": patient.cpf,
        "preferred_channel": profile.preferred_channel,
        "reminders_opt_in": profile.reminders_opt_in,
        "notes": profile.notes,
    }


def _change_email(patient: User, raw: Any) -> None:
    email = normalize_email(raw) if isinstance(raw, str) else None
    if email is None:
        raise PatientError("error.invalid_email")
    if email == patient.email:
        return
    if patient.password_hash is not None:
        raise Conflict("card.error.email_is_login")
    patient.email, patient.email_verified_at = email, None


def _notes(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise PatientError("error.bad_parameter", name="notes")
    if len(raw) > MAX_NOTES_CHARS:
        raise PatientError("card.error.notes_too_long", limite=MAX_NOTES_CHARS)
    return raw.strip() or None


async def _reminders(session: AsyncSession, patient_id: int, raw: Any) -> None:
    """Staff record the patient's word on reminders as a consent given (or withdrawn) at the
    desk, like any other."""
    if not isinstance(raw, bool):
        raise PatientError("error.bad_parameter", name="reminders_opt_in")
    if raw:
        await consent.grant(session, patient_id, consent.REMINDERS, channel=STAFF_CHANNEL)
    else:
        await consent.withdraw(session, patient_id, consent.REMINDERS, channel=STAFF_CHANNEL)
