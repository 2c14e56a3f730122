"""Versioned consent (LGPD art. 8): each purpose a patient agrees to is recorded with the
version of the text they read, when, and on which channel; a withdrawal closes the record
(it is never deleted: the clinic must be able to prove what was agreed).

The purposes, and what a withdrawal stops (and cannot stop):

- `atendimento` — the patient's data used to schedule and attend them over the clinic's
  channels. Withdrawn, the assistant asks for consent again before it collects any data.
  It cannot undo appointments or erase their records: those rest on the protection of health
  and the clinic's legal duties (art. 7 II/V, art. 11 II a/f), not on consent; erasing the
  rest of the data is the separate erasure request (`accounts.erasure`).
- `lembretes` — appointment reminders. Withdrawn, no reminder is sent to the patient on any
  channel (`PatientProfile.reminders_opt_in`, which the reminder dispatch checks); messages
  the patient starts are still answered.
- `marketing` — campaigns, surveys, birthday messages: a separate, revocable opt-in
  (art. 8 §5). Nothing is sent for it unless it is active.

The current text of each purpose and its version live in the catalog
(`consent.<purpose>.text`, `consent.<purpose>.version`); changing a text means giving it a
new version, and a consent to an older version stays what it was.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.catalog import t
from core.errors import NotFound
from models import Consent, PatientProfile, utcnow

SERVICE = "atendimento"
REMINDERS = "lembretes"
MARKETING = "marketing"
PURPOSES = (SERVICE, REMINDERS, MARKETING)
# What a sign-up's one checkbox agrees to (its text, `signup.consent`, names both).
AT_SIGN_UP = (SERVICE, REMINDERS)


class UnknownPurpose(NotFound):
    code = "consent.error.unknown_purpose"


def current_version(purpose: str) -> str:
    return t(f"consent.{purpose}.version")


def _checked(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise UnknownPurpose()
    return purpose


async def _profile(session: AsyncSession, patient_id: int) -> PatientProfile:
    profile = await session.get(PatientProfile, patient_id, with_for_update=True)
    if profile is None:
        profile = PatientProfile(user_id=patient_id)
        session.add(profile)
    return profile


def _apply(profile: PatientProfile, purpose: str, granted_at: datetime | None) -> None:
    """What the rest of the platform checks, kept on the profile."""
    if purpose == SERVICE:
        profile.lgpd_consent_at = granted_at
    elif purpose == REMINDERS:
        profile.reminders_opt_in = granted_at is not None


async def active(session: AsyncSession, patient_id: int, purpose: str) -> Consent | None:
    query = select(Consent).where(
        Consent.patient_id == patient_id,
        Consent.purpose == purpose,
        Consent.withdrawn_at.is_(None),
    )
    return (await session.execute(query.order_by(Consent.id.desc()).limit(1))).scalar()


async def grant(
    session: AsyncSession,
    patient_id: int,
    purpose: str,
    *,
    channel: str,
    now: datetime | None = None,
) -> Consent:
    """Record the patient's consent to the current text of `purpose`; an active consent to
    that same version is kept as it is (agreeing twice changes nothing)."""
    version = current_version(_checked(purpose))
    profile = await _profile(session, patient_id)
    current = await active(session, patient_id, purpose)
    if current is not None and current.text_version == version:
        return current
    now = now or utcnow()
    if current is not None:  # agreed to an older text: that consent is superseded
        current.withdrawn_at, current.withdrawn_channel = now, channel
    consent = Consent(
        patient_id=patient_id,
        purpose=purpose,
        text_version=version,
        channel=channel,
        granted_at=now,
    )
    session.add(consent)
    _apply(profile, purpose, now)
    return consent


async def withdraw(
    session: AsyncSession,
    patient_id: int,
    purpose: str,
    *,
    channel: str,
    now: datetime | None = None,
) -> bool:
    """Take back the patient's consent to `purpose`; False when none was active. A
    purpose that never had a record but is on by default (reminders) is turned off too."""
    _checked(purpose)
    profile = await _profile(session, patient_id)
    current = await active(session, patient_id, purpose)
    _apply(profile, purpose, None)
    if current is None:
        return False
    current.withdrawn_at, current.withdrawn_channel = now or utcnow(), channel
    return True


async def grant_at_sign_up(session: AsyncSession, patient_id: int, *, channel: str) -> None:
    for purpose in AT_SIGN_UP:
        await grant(session, patient_id, purpose, channel=channel)


async def history(session: AsyncSession, patient_id: int) -> list[Consent]:
    """Every consent the patient gave, withdrawn or not, oldest first."""
    query = select(Consent).where(Consent.patient_id == patient_id)
    return list((await session.execute(query.order_by(Consent.id))).scalars())
