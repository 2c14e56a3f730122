"""Patients' own accounts: sign-up and their contact data (the export and erasure the LGPD
gives them are `accounts.export` and `accounts.erasure`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from accounts.admin import MIN_PASSWORD_LENGTH
from accounts.auth import hash_password
from accounts.consent import grant_at_sign_up
from core.contacts import normalize_cpf, normalize_email, normalize_phone
from core.errors import BadRequest
from messaging.identities import create_patient
from models import User
from models.db import Database

SIGN_UP_CHANNEL = "portal"


class PatientError(BadRequest):
    """Invalid input (400); `code` is a catalog key."""


class AlreadyRegistered(PatientError):
    """The e-mail or the CPF already has an account (409)."""

    code = "error.email_taken"
    status = 409


def _required(value: Any, code: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PatientError(code)
    return value.strip()


async def sign_up(
    db: Database, *, name: Any, email: Any, phone: Any, cpf: Any, password: Any, consent: Any
) -> User:
    """A new patient account. An existing record with the same CPF or e-mail is never
    taken over from here: whoever types someone's CPF must not get their history."""
    full_name = _required(name, "error.name_required")
    normalized_email = normalize_email(_required(email, "error.invalid_email"))
    if normalized_email is None:
        raise PatientError("error.invalid_email")
    normalized_phone = normalize_phone(_required(phone, "error.invalid_phone"))
    if normalized_phone is None:
        raise PatientError("error.invalid_phone")
    normalized_cpf = normalize_cpf(_required(cpf, "error.invalid_cpf"))
    if normalized_cpf is None:
        raise PatientError("error.invalid_cpf")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise PatientError("error.password_too_short", minimum=MIN_PASSWORD_LENGTH)
    if consent is not True:
        raise PatientError("error.consent_required")
    try:
        async with db.session() as session:
            query = select(User.email).where(
                or_(User.email == normalized_email, User.cpf == normalized_cpf)
            )
            taken = (await session.execute(query.limit(1))).first()
            if taken is not None:
                same_email = taken.email == normalized_email
                raise AlreadyRegistered("error.email_taken" if same_email else "error.cpf_taken")
            # The phone is stored but not used to match channel identities: typed on a form it
            # proves nothing, and matching would hand someone else's WhatsApp history over.
            patient = await create_patient(session, name=full_name, email=normalized_email)
            patient.phone_e164 = normalized_phone
            patient.cpf = normalized_cpf
            patient.password_hash = hash_password(password)
            await grant_at_sign_up(session, patient.id, channel=SIGN_UP_CHANNEL)
    except IntegrityError:
        raise AlreadyRegistered() from None
    return patient


async def load_patient(db: Database, patient_id: int) -> User:
    query = select(User).where(User.id == patient_id).options(selectinload(User.patient_profile))
    async with db.session() as session:
        return (await session.execute(query)).scalar_one()


async def update_contact(
    db: Database, patient_id: int, *, name: Any = None, phone: Any = None
) -> User:
    async with db.session() as session:
        query = (
            select(User)
            .where(User.id == patient_id)
            .options(selectinload(User.patient_profile))
            .with_for_update()
        )
        patient = (await session.execute(query)).scalar_one()
        if name is not None:
            patient.name = _required(name, "error.name_required")
        if phone is not None:
            normalized = normalize_phone(_required(phone, "error.invalid_phone"))
            if normalized is None:
                raise PatientError("error.invalid_phone")
            patient.phone_e164 = normalized
    return patient
