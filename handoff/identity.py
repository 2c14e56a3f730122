"""Who is writing: channel identities resolved to one patient across every channel."""

from __future__ import annotations

import re

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import ChannelIdentity, PatientProfile, Role, User

_BR_MOBILE_WITHOUT_NINTH = re.compile(r"^55(\d{2})([6-9]\d{7})$")


def normalize_phone(raw: str) -> str | None:
    """E.164 for a Brazilian or international phone, inserting the mobile ninth digit
    that old WhatsApp ids lack; None when it is not a phone number."""
    digits = re.sub(r"\D", "", raw or "")
    if not digits:
        return None
    if old := _BR_MOBILE_WITHOUT_NINTH.match(digits):
        digits = f"55{old.group(1)}9{old.group(2)}"
    candidate = f"+{digits}" if raw.strip().startswith("+") or digits.startswith("55") else digits
    try:
        number = phonenumbers.parse(candidate, "BR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_match_key(e164: str | None) -> str | None:
    """55 + DDD + last 8 digits for Brazilian numbers, so 55DD9XXXXXXXX matches 55DDXXXXXXXX."""
    if not e164 or not e164.startswith("+55"):
        return None
    digits = e164[1:]
    return digits[:4] + digits[-8:]


def normalize_email(raw: str) -> str | None:
    email = (raw or "").strip().lower()
    return email if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) else None


async def find_patient_by_phone(session: AsyncSession, e164: str) -> User | None:
    key = phone_match_key(e164)
    query = select(User).where(User.role == Role.PATIENT)
    if key:
        query = query.join(PatientProfile).where(PatientProfile.phone_match_key == key)
    else:
        query = query.where(User.phone_e164 == e164)
    return (await session.execute(query.order_by(User.id).limit(1))).scalar_one_or_none()


async def create_patient(
    session: AsyncSession,
    *,
    name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    channel: str | None = None,
) -> User:
    patient = User(role=Role.PATIENT, name=name, phone_e164=phone, email=email)
    patient.patient_profile = PatientProfile(
        preferred_channel=channel, phone_match_key=phone_match_key(phone)
    )
    session.add(patient)
    await session.flush()
    return patient


async def resolve_identity(
    session: AsyncSession,
    channel: str,
    external_id: str,
    *,
    display_name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> ChannelIdentity:
    """The identity for (channel, external id), linking a new one to the patient with the
    same phone or e-mail when there is one, else to a new patient."""
    query = select(ChannelIdentity).where(
        ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
    )
    identity = (await session.execute(query)).scalar_one_or_none()
    if identity is not None:
        return identity
    try:
        async with session.begin_nested():
            patient = await _patient_to_link(session, channel, display_name, phone, email)
            identity = ChannelIdentity(
                channel=channel,
                external_id=external_id,
                patient_id=patient.id,
                display_name=display_name,
            )
            session.add(identity)
    except IntegrityError:
        # Another request created the same identity first: use theirs.
        return (await session.execute(query)).scalar_one()
    return identity


async def _patient_to_link(
    session: AsyncSession,
    channel: str,
    display_name: str | None,
    phone: str | None,
    email: str | None,
) -> User:
    if phone and (patient := await find_patient_by_phone(session, phone)):
        return patient
    if email:
        query = select(User).where(User.email == email, User.role == Role.PATIENT)
        if patient := (await session.execute(query)).scalar_one_or_none():
            return patient
    return await create_patient(
        session, name=display_name, phone=phone, email=email, channel=channel
    )


def normalize_cpf(raw: str) -> str | None:
    """11 bare digits when the CPF's check digits are right; None otherwise. The eleven
    repeated-digit strings pass the checksum but are never issued, so they are refused."""
    digits = re.sub(r"\D", "", raw or "")
    if len(digits) != 11 or len(set(digits)) == 1:
        return None
    numbers = [int(d) for d in digits]
    for position in (9, 10):
        weights = range(position + 1, 1, -1)
        total = sum(n * w for n, w in zip(numbers[:position], weights, strict=True))
        check = (total * 10) % 11 % 10
        if numbers[position] != check:
            return None
    return digits


def mask_cpf(cpf: str | None) -> str | None:
    """How staff screens show a CPF: ***.982.247-**."""
    return f"***.{cpf[3:6]}.{cpf[6:9]}-**" if cpf else None
