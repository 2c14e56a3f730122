"""Rows the tests need, created through the same code paths the product uses."""

from __future__ import annotations

import itertools

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from accounts.auth import hash_password
from channels.base import Inbound
from core.ratelimit import LocalLimits
from messaging.history import record_inbound
from models import (
    Appointment,
    AttendantProfile,
    AuditLog,
    Doctor,
    Message,
    Presence,
    Role,
    SecondFactorPolicy,
    SecurityPolicy,
    User,
    utcnow,
)
from models.db import Database
from scheduling.agenda import find_slots
from scheduling.appointments import BookingRules, book

_counter = itertools.count(1)
_cpfs = itertools.count(100_000)


async def staff(
    db: Database,
    role: Role = Role.ATTENDANT,
    *,
    presence: Presence = Presence.ONLINE,
    capacity: int = 5,
    password: str = "senha-segura",
) -> User:
    n = next(_counter)
    async with db.session() as session:
        user = User(
            name=f"Atendente {n}",
            email=f"staff{n}@clinica.test",
            role=role,
            password_hash=hash_password(password),
        )
        if role in (Role.ATTENDANT, Role.MANAGER):
            user.attendant_profile = AttendantProfile(presence=presence, capacity=capacity)
        session.add(user)
    return user


async def patient_message(
    db: Database, text: str = "oi", *, channel: str = "webchat", user: str | None = None, **fields
):
    """Record one inbound message as a connector would; returns the Recorded."""
    n = next(_counter)
    inbound = Inbound(
        channel=channel,
        external_user_id=user or f"visitor-{n}",
        provider_message_id=fields.pop("provider_message_id", f"msg-{n}"),
        text=text,
        **fields,
    )
    async with db.session() as session:
        return await record_inbound(session, inbound)


def valid_cpf(n: int) -> str:
    """A CPF with correct check digits, different for each n."""
    digits = [int(d) for d in f"{(n * 7919 + 100_000_000) % 1_000_000_000:09d}"]
    for position in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(position + 1, 1, -1), strict=True))
        digits.append(total * 10 % 11 % 10)
    return "".join(map(str, digits))


def fresh_cpf() -> str:
    """A valid CPF no other test uses (a CPF belongs to one patient; tests that pick their
    own n use small ones)."""
    return valid_cpf(next(_cpfs))


async def widget_patient(db: Database, token: str) -> User:
    """The patient behind a site widget visitor (after their first message), by the visitor
    token the widget keeps."""
    async with db.session() as session:
        query = (
            select(User)
            .join(Message, Message.patient_id == User.id)
            .where(Message.provider_message_id.like(f"{token.split('.')[0]}:%"))
            .options(selectinload(User.patient_profile))
            .limit(1)
        )
        return (await session.execute(query)).scalar_one()


async def returning_patient(db: Database, patient_id: int) -> User:
    """Complete a patient's record (name, CPF, phone, LGPD consent, an e-mail confirmed on
    the portal) as a returning patient's, so the bot does not ask who they are and books."""
    n = next(_counter)
    async with db.session() as session:
        user = await session.get(User, patient_id, options=[selectinload(User.patient_profile)])
        user.name = f"Paciente Conhecido {n}"
        user.cpf = fresh_cpf()
        user.phone_e164 = f"+55119{n:08d}"
        user.email, user.email_verified_at = f"conhecido{n}@exemplo.com", utcnow()
        user.patient_profile.lgpd_consent_at = utcnow()
    return user


def clinic_rules(**overrides: int) -> BookingRules:
    """The default booking rules (the settings' defaults), on a rate limiter of their own."""
    return BookingRules(LocalLimits(), **overrides)


async def booked(db: Database, patient: User, doctor_name: str = "Ricardo", nth: int = 0):
    """An appointment of the patient at the doctor's nth nearest free slot."""
    async with db.session() as session:
        doctor = (
            await session.execute(select(Doctor).where(Doctor.name.contains(doctor_name)))
        ).scalar_one()
        slots = await find_slots(session, now=utcnow(), doctor_id=doctor.id, limit=nth + 1)
    appointment: Appointment = await book(
        db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=slots[nth].doctor_id,
        starts_at=slots[nth].starts_at,
        channel="webchat",
        self_service=False,
    )
    return appointment


# What logging in and out records; tests about other entries leave them aside.
# What logging in and out records, with the enrolment `tests.webapp.logged_in` makes for
# staff the second-factor policy asks it of.
SESSION_ACTIONS = ("login", "login_failed", "logout", "second_factor_enrolled")


async def audit_entries(db: Database, *actions: str) -> list[AuditLog]:
    """The audit log in order: the entries of `actions`, or every one but logins and logouts."""
    query = select(AuditLog).order_by(AuditLog.id)
    query = query.where(
        AuditLog.action.in_(actions) if actions else AuditLog.action.not_in(SESSION_ACTIONS)
    )
    async with db.session() as session:
        return list((await session.execute(query)).scalars().all())


async def second_factor_optional(db: Database) -> None:
    """Staff log in with their password alone, for tests about something else than the
    second factor (tests/accounts/test_second_factor.py covers it): by default managers and
    admins must enrol before they can do anything."""
    async with db.session() as session:
        session.add(SecurityPolicy(second_factor=SecondFactorPolicy.NOBODY))
