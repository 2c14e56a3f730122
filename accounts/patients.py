"""Patients' own accounts: sign-up and its e-mail verification, and their contact data (the
export and erasure the LGPD gives them are `accounts.export` and `accounts.erasure`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from accounts import tokens
from accounts.admin import MIN_PASSWORD_LENGTH
from accounts.auth import new_password_hash
from accounts.consent import grant_at_sign_up
from accounts.mail import AccountMail, clinic_name
from accounts.tokens import RESET_PAGE, VERIFY_PAGE, InvalidLink
from core.catalog import t
from core.contacts import normalize_cpf, normalize_email, normalize_phone, phone_match_key
from core.context import Context
from core.errors import BadRequest, Conflict
from core.events import message_event
from handoff.transitions.queueing import request_handoff
from messaging import verification
from messaging.history import open_conversation, record_outbound
from messaging.identities import contact_identities, create_patient
from messaging.verification import Check, Checked
from models import AuthorKind, ChannelIdentity, PatientProfile, TokenPurpose, User, utcnow
from models.db import Database
from scheduling.reminders import channel_order

SIGN_UP_CHANNEL = "portal"
# The handoff reason (catalog `reason.*`) of a phone proved that another account holds.
PHONE_HELD_BY_ACCOUNT = "telefone_em_outro_cadastro"


class PatientError(BadRequest):
    """Invalid input (400); `code` is a catalog key."""


def _required(value: Any, code: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PatientError(code)
    return value.strip()


@dataclass(frozen=True)
class SignUp:
    name: str
    email: str
    phone: str
    cpf: str
    password: str


def check_sign_up(
    *, name: Any, email: Any, phone: Any, cpf: Any, password: Any, consent: Any
) -> SignUp:
    """The form's fields, normalised, or the first mistake in them (PatientError)."""
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
    return SignUp(full_name, normalized_email, normalized_phone, normalized_cpf, password)


async def sign_up(ctx: Context, form: SignUp) -> AccountMail | None:
    """A new patient account, unverified: it cannot log in and its e-mail links nothing
    until the link mailed to the address is followed. The requester is told the same
    whatever the outcome; who owns the address or the CPF learns by mail (the returned one,
    to be posted) that someone used it. An existing record is never taken over from here:
    whoever types someone's CPF must not get their history."""
    password_hash = await new_password_hash(form.password)  # the same work in every case
    clinic = await clinic_name(ctx)
    base = ctx.settings.public_base_url
    notice = {"clinica": clinic, "login": f"{base}/login", "reset": f"{base}/{RESET_PAGE}"}
    try:
        async with ctx.db.session() as session:
            owner = await _holder(session, User.email == form.email)
            if owner is not None:
                return AccountMail(form.email, t("mail.account_exists", **notice))
            owner = await _holder(session, User.cpf == form.cpf)
            if owner is not None:
                verified = owner.email if owner.email_verified_at is not None else None
                return AccountMail(verified, t("mail.cpf_in_use", **notice)) if verified else None
            # The phone is stored but not used to match channel identities: typed on a form
            # it proves nothing, and matching would hand someone else's WhatsApp history over.
            patient = await create_patient(session, name=form.name, email=form.email)
            patient.phone_e164 = form.phone
            patient.cpf = form.cpf
            patient.password_hash = password_hash
            await grant_at_sign_up(session, patient.id, channel=SIGN_UP_CHANNEL)
            return await verification_mail(ctx, session, patient, clinic)
    except IntegrityError:
        return None  # a sign-up with the same e-mail or CPF won the race: it got the mail


async def _holder(session: AsyncSession, match: ColumnElement[bool]) -> User | None:
    """Who holds this e-mail or CPF. A sign-up whose link expired unfollowed holds nothing:
    it is retired (deactivated, its e-mail and CPF freed), so nobody can park someone
    else's CPF or e-mail and keep its owner from signing up."""
    owner = await _owner_of(session, match)
    if owner is None or not _abandoned(owner):
        return owner
    owner.is_active, owner.email, owner.cpf = False, None, None
    await session.flush()  # unique columns: freed before the new account takes them
    return None


def _abandoned(user: User) -> bool:
    """A sign-up (it set a password) never verified within its link's lifetime."""
    lifetime = tokens.LIFETIMES[TokenPurpose.VERIFY_EMAIL]
    return (
        user.password_hash is not None
        and user.email_verified_at is None
        and user.created_at < utcnow() - lifetime
    )


async def _owner_of(session: AsyncSession, match: ColumnElement[bool]) -> User | None:
    return (await session.execute(select(User).where(match).limit(1))).scalar_one_or_none()


async def verification_mail(
    ctx: Context, session: AsyncSession, patient: User, clinic: str
) -> AccountMail:
    """The link that proves the patient's e-mail (a new one; earlier ones stop working)."""
    assert patient.email is not None
    token = await tokens.issue(session, patient.id, TokenPurpose.VERIFY_EMAIL)
    hours = int(tokens.LIFETIMES[TokenPurpose.VERIFY_EMAIL].total_seconds() // 3600)
    text = t(
        "mail.verify",
        clinica=clinic,
        horas=hours,
        link=tokens.link(ctx.settings.public_base_url, VERIFY_PAGE, token),
    )
    return AccountMail(patient.email, text)


async def verify_email(db: Database, token: str) -> User:
    """Follow a verification link: the address is the patient's from now on."""
    async with db.session() as session:
        patient = await tokens.spend(session, token, TokenPurpose.VERIFY_EMAIL)
        if patient is None:
            raise InvalidLink()
        patient.email_verified_at = patient.email_verified_at or utcnow()
        await _join_contacts(session, patient)
    return patient


async def _join_contacts(session: AsyncSession, patient: User) -> None:
    """What the patient proved is a channel identity like any other: mail or messages from
    it join them, and replies and reminders can reach them there."""
    await contact_identities(session, patient, await session.get(PatientProfile, patient.id))


async def load_patient(db: Database, patient_id: int) -> User:
    query = select(User).where(User.id == patient_id).options(selectinload(User.patient_profile))
    async with db.session() as session:
        return (await session.execute(query)).scalar_one()


async def update_contact(
    db: Database, patient_id: int, *, name: Any = None, phone: Any = None
) -> None:
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
            change_phone(patient, phone)


def change_phone(patient: User, phone: Any) -> None:
    """A phone typed for the patient (profile loaded), E.164 or PatientError. A new phone is
    only typed: it matches nothing, and no code is sent to it, until proved by its code."""
    normalized = normalize_phone(_required(phone, "error.invalid_phone"))
    if normalized is None:
        raise PatientError("error.invalid_phone")
    if normalized != patient.phone_e164 and patient.patient_profile is not None:
        patient.patient_profile.phone_match_key = None
    patient.phone_e164 = normalized


async def reminder_channels(ctx: Context, patient_id: int) -> list[str]:
    """The channels a reminder can reach the patient on, in the order they are tried when no
    preferred one is set: those they wrote from, their proved phone and verified e-mail."""
    async with ctx.db.session() as session:
        return await reachable_channels(ctx, session, patient_id)


async def reachable_channels(ctx: Context, session: AsyncSession, patient_id: int) -> list[str]:
    """`reminder_channels`, in the caller's transaction."""
    patient = await session.get_one(User, patient_id)
    profile = await session.get(PatientProfile, patient_id)
    identities = await contact_identities(session, patient, profile)
    return [i.channel for i in channel_order(None, identities, set(ctx.senders))]


async def set_preferred_channel(ctx: Context, patient_id: int, channel: Any) -> None:
    """Reminders go first to `channel`, one the patient can be reached on (None: no
    preference)."""
    async with ctx.db.session() as session:
        await prefer_channel(ctx, session, patient_id, channel)


async def prefer_channel(
    ctx: Context, session: AsyncSession, patient_id: int, channel: Any
) -> None:
    """`set_preferred_channel`, in the caller's transaction."""
    if channel is not None and channel not in await reachable_channels(ctx, session, patient_id):
        raise PatientError("error.channel_unreachable")
    profile = await session.get(PatientProfile, patient_id, with_for_update=True)
    if profile is None:
        profile = PatientProfile(user_id=patient_id)
        session.add(profile)
    profile.preferred_channel = channel


def phone_proved(patient: User) -> bool:
    """Whether the patient's phone was proved (patient profile loaded): only then do
    channel identities with it join their record."""
    profile = patient.patient_profile
    key = phone_match_key(patient.phone_e164)
    return key is not None and profile is not None and profile.phone_match_key == key


async def send_phone_code(ctx: Context, patient_id: int) -> None:
    """A one-time code to the patient's typed phone (WhatsApp when enabled, else SMS)."""
    channel = verification.code_channel(ctx)
    async with ctx.db.session() as session:
        claim_id = await verification.open_phone_proof(
            session, patient_id, channel=channel, now=utcnow()
        )
    if not await verification.send_code(ctx, claim_id, patient_id):
        raise Conflict("error.code_not_sent")


async def confirm_phone(ctx: Context, patient_id: int, code: Any) -> None:
    """The code the patient typed: the right one in time makes their phone proved."""
    typed = code if isinstance(code, str) else ""
    async with ctx.db.session() as session:
        claim = await verification.open_claim_of(session, patient_id, own_phone=True)
        checked = (
            await verification.check_code(
                session, claim.id, typed, secret=ctx.settings.session_secret, now=utcnow()
            )
            if claim is not None
            else verification.Checked(Check.EXPIRED)
        )
    if checked.result == Check.WRONG:
        raise BadRequest("error.code_wrong", restantes=checked.remaining)
    if checked.result == Check.REFUSED:
        raise BadRequest("error.code_refused")
    if checked.result == Check.EXPIRED:
        raise BadRequest("error.code_expired")
    if checked.result == Check.ASK_STAFF:
        await _ask_staff_about_phone(ctx, patient_id, checked)
        raise Conflict("error.phone_held_by_account")
    async with ctx.db.session() as session:
        await _join_contacts(session, await session.get_one(User, patient_id))


async def _ask_staff_about_phone(ctx: Context, patient_id: int, checked: Checked) -> None:
    """The phone's conversation (where the code went, so whoever proved it reads there)
    joins the staff queue, with a staff-only note of who proved it and which cadastros with
    an account hold it. The requester hears only that the team will get in touch."""
    assert checked.destination_id is not None  # a conflict always names where the code went
    async with ctx.db.session() as session:
        requester = await session.get_one(User, patient_id)
        destination = await session.get_one(ChannelIdentity, checked.destination_id)
        conversation = await open_conversation(session, destination)
        note = await record_outbound(
            session,
            conversation,
            text=t(
                "note.phone_held_by_account",
                nome=requester.name or "",
                cadastro=patient_id,
                outros=", ".join(str(holder) for holder in checked.holders),
            ),
            author_kind=AuthorKind.SYSTEM,
            internal=True,
        )
    await ctx.bus.publish(message_event(note, conversation))
    await request_handoff(ctx, conversation.id, reason=PHONE_HELD_BY_ACCOUNT)
