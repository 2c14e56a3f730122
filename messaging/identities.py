"""Who is writing: channel identities resolved to one patient across every channel."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from channels import email, twilio, whatsapp
from channels.base import UNAUTHENTICATED
from core.contacts import phone_match_key
from models import Base, ChannelIdentity, PatientProfile, Role, User

log = logging.getLogger(__name__)


async def find_patient_by_phone(session: AsyncSession, e164: str) -> User | None:
    """The patient who writes to the clinic from this (provider-verified) phone."""
    query = (
        select(User)
        .join(PatientProfile)
        .where(
            User.role == Role.PATIENT,
            User.is_active.is_(True),
            PatientProfile.phone_match_key == phone_match_key(e164),
        )
    )
    return (await session.execute(query.order_by(User.id).limit(1))).scalar_one_or_none()


async def has_verified_contact(session: AsyncSession, patient_id: int) -> bool:
    """Whether the patient proved some way to reach them: an e-mail verified by its link, a
    phone a provider proved (WhatsApp, SMS, a Telegram contact shared by its owner) or proved
    by a one-time code (its match key is set only then), or authenticated mail from their
    address. A typed phone or e-mail, or a widget visitor, proves nothing."""
    verified_email = select(User.id).where(
        User.id == patient_id, User.email_verified_at.is_not(None)
    )
    proved_phone = select(PatientProfile.user_id).where(
        PatientProfile.user_id == patient_id, PatientProfile.phone_match_key.is_not(None)
    )
    proved_identity = select(ChannelIdentity.id).where(
        ChannelIdentity.patient_id == patient_id,
        or_(
            ChannelIdentity.verified_phone.is_not(None),
            and_(
                ChannelIdentity.channel == "email",
                ChannelIdentity.details[UNAUTHENTICATED].as_string().is_(None),
            ),
        ),
    )
    query = select(or_(verified_email.exists(), proved_phone.exists(), proved_identity.exists()))
    return bool(await session.scalar(query))


def phone_address(channel: str, phone: str) -> str:
    """The channel's id for a phone: WhatsApp's wa_id has no "+"; Twilio's SMS From has."""
    return phone.removeprefix("+") if channel == whatsapp.CHANNEL else phone


def _proved_contacts(
    patient: User, profile: PatientProfile | None
) -> dict[str, tuple[str, str | None]]:
    """(address, proved phone) by channel of what the patient proved at sign-up or since:
    their phone (its one-time code came back) on WhatsApp and SMS, their e-mail (its link
    was followed)."""
    contacts: dict[str, tuple[str, str | None]] = {}
    phone = patient.phone_e164
    if phone and profile is not None and profile.phone_match_key == phone_match_key(phone):
        for channel in (whatsapp.CHANNEL, twilio.CHANNEL):
            contacts[channel] = (phone_address(channel, phone), phone)
    if patient.email and patient.email_verified_at is not None:
        contacts[email.CHANNEL] = (patient.email, None)
    return contacts


def _still_reaches(identity: ChannelIdentity, proved: dict[str, tuple[str, str | None]]) -> bool:
    """An identity made from a proved phone the patient never wrote from stands only while
    that phone is still the one they proved: after they change it, the old number (perhaps
    someone else's by now) gets no reminder or reply."""
    if identity.last_inbound_at is not None or identity.verified_phone is None:
        return True
    return proved.get(identity.channel, ("", None))[1] == identity.verified_phone


async def contact_identities(
    session: AsyncSession, patient: User, profile: PatientProfile | None
) -> list[ChannelIdentity]:
    """The patient's channel identities, with one for each proved contact on a channel they
    never wrote from (so a reminder or a reply can reach a patient who only signed up, and
    what they later write from there joins them). An address already known as another
    patient's is left alone: nobody else's conversation is written into."""
    proved = _proved_contacts(patient, profile)
    query = select(ChannelIdentity).where(ChannelIdentity.patient_id == patient.id)
    identities = [
        identity
        for identity in (await session.execute(query)).scalars()
        if _still_reaches(identity, proved)
    ]
    known = {identity.channel for identity in identities}
    for channel, (address, phone) in proved.items():
        if channel in known:
            continue
        identity = await identity_for(session, patient.id, channel, address, phone)
        if identity is not None:
            identities.append(identity)
    return identities


async def identity_for(
    session: AsyncSession, patient_id: int, channel: str, address: str, phone: str | None = None
) -> ChannelIdentity | None:
    """The identity on `channel` at `address`, made for the patient when nobody has it;
    None when it is another patient's."""
    existing = await _find_identity(session, channel, address, {})
    if existing is None:
        try:
            async with session.begin_nested():
                existing = ChannelIdentity(
                    channel=channel,
                    external_id=address,
                    patient_id=patient_id,
                    verified_phone=phone,
                )
                session.add(existing)
        except IntegrityError:  # made at the same moment by an inbound message
            existing = await _find_identity(session, channel, address, {})
    return existing if existing is not None and existing.patient_id == patient_id else None


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
    aliases: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
) -> ChannelIdentity:
    """The identity for (channel, external id) or any of its aliases, linking a new one to
    the patient with the same phone or e-mail when there is one, else to a new patient.

    `phone` is one the provider proved (WhatsApp wa_id, Twilio's From, a Telegram contact
    shared by its owner); it is kept as the identity's `verified_phone`. `aliases` are other
    ids the provider gives for the same person (WhatsApp: phone wa_id and business-scoped
    user id); they and `details` are kept on the identity.
    """
    aliases = dict(aliases or {})
    identity = await _find_identity(session, channel, external_id, aliases)
    if identity is not None:
        await refresh_identity(session, identity, phone=phone, aliases=aliases, details=details)
        return identity
    try:
        async with session.begin_nested():
            patient = await _patient_to_link(session, channel, display_name, phone, email)
            identity = ChannelIdentity(
                channel=channel,
                external_id=external_id,
                patient_id=patient.id,
                display_name=display_name,
                details={**aliases, **(details or {})},
                verified_phone=phone,
            )
            session.add(identity)
    except IntegrityError:
        # Another request created the same identity first: use theirs.
        query = select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
        )
        return (await session.execute(query)).scalar_one()
    return identity


def identity_matches(
    channel: str, external_id: str, aliases: Mapping[str, str]
) -> ColumnElement[bool]:
    """The identity known on `channel` by this id or by any of its aliases."""
    matches = [ChannelIdentity.external_id.in_({external_id, *aliases.values()})]
    matches += [ChannelIdentity.details[key].as_string() == value for key, value in aliases.items()]
    return and_(ChannelIdentity.channel == channel, or_(*matches))


async def _find_identity(
    session: AsyncSession, channel: str, external_id: str, aliases: Mapping[str, str]
) -> ChannelIdentity | None:
    query = (
        select(ChannelIdentity)
        .where(identity_matches(channel, external_id, aliases))
        .order_by(ChannelIdentity.id)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def refresh_identity(
    session: AsyncSession,
    identity: ChannelIdentity,
    *,
    phone: str | None,
    aliases: Mapping[str, str],
    details: Mapping[str, Any] | None,
) -> None:
    """What a new message from a known identity tells about it: new aliases and details,
    and a phone the provider proved since (linked as when it was first proved)."""
    _merge_details(identity, {**aliases, **(details or {})})
    if phone and phone != identity.verified_phone:
        identity.verified_phone = phone
        await link_phone(session, identity, phone)


def _merge_details(identity: ChannelIdentity, new: Mapping[str, Any]) -> None:
    current = identity.details or {}
    if any(current.get(key) != value for key, value in new.items()):
        # Reassigned, not mutated: the JSON column only notices a new value.
        identity.details = {**current, **new}


async def link_phone(session: AsyncSession, identity: ChannelIdentity, phone: str) -> None:
    """The person behind `identity` has this (provider-verified) phone: they are the patient
    who already has it, or the phone becomes their patient's."""
    patient = await session.get_one(User, identity.patient_id)
    if patient.phone_e164 and phone_match_key(patient.phone_e164) == phone_match_key(phone):
        return
    other = await find_patient_by_phone(session, phone)
    if other is not None and other.id != patient.id:
        await merge_patients(session, source=patient, target=other)
        identity.patient_id = other.id
    elif patient.phone_e164 is None:
        await set_proved_phone(session, patient, phone)


async def set_proved_phone(session: AsyncSession, patient: User, phone: str) -> None:
    """The phone is the patient's, proved: channel identities with it are matched to them."""
    patient.phone_e164 = phone
    profile = await session.get(PatientProfile, patient.id)
    if profile is not None:
        profile.phone_match_key = phone_match_key(phone)


async def phone_holders(
    session: AsyncSession, phone: str, *, besides: int, also: ChannelIdentity | None = None
) -> list[User]:
    """The other active patients this phone is proved for: by its match key, or by a channel
    identity a provider proved it on; and the patient of `also` (an identity addressed to
    the phone)."""
    ids = {identity.patient_id for identity in await verified_channels(session, phone=phone)}
    if (by_key := await find_patient_by_phone(session, phone)) is not None:
        ids.add(by_key.id)
    if also is not None:
        ids.add(also.patient_id)
    ids.discard(besides)
    query = select(User).where(User.id.in_(ids), User.is_active.is_(True)).order_by(User.id)
    return list((await session.execute(query)).scalars())


async def verified_channels(
    session: AsyncSession, *, patient_id: int | None = None, phone: str | None = None
) -> list[ChannelIdentity]:
    """The channel identities of active patients whose phone a provider proved, either the
    given patient's or those with this phone; the most recently used first."""
    query = (
        select(ChannelIdentity)
        .join(User, User.id == ChannelIdentity.patient_id)
        .where(ChannelIdentity.verified_phone.is_not(None), User.is_active.is_(True))
        .order_by(ChannelIdentity.last_inbound_at.desc().nulls_last(), ChannelIdentity.id.desc())
    )
    if patient_id is not None:
        query = query.where(ChannelIdentity.patient_id == patient_id)
    if phone is not None:
        query = query.where(ChannelIdentity.verified_phone == phone)
    return list((await session.execute(query)).scalars())


async def claimed_owner(
    session: AsyncSession, *, phone: str | None = None, cpf: str | None = None
) -> User | None:
    """Whom a CPF or phone typed in a conversation points to: the patient with this CPF, or
    the one who writes to the clinic from this phone (a phone a provider proved; one only
    typed on a form proves nothing)."""
    if cpf:
        query = select(User).where(
            User.cpf == cpf, User.role == Role.PATIENT, User.is_active.is_(True)
        )
        if found := (await session.execute(query)).scalar_one_or_none():
            return found
    if phone and (channels := await verified_channels(session, phone=phone)):
        return await session.get(User, channels[0].patient_id)
    return None


async def link_claimed_contact(
    session: AsyncSession, patient_id: int, *, phone: str | None = None, cpf: str | None = None
) -> User:
    """The patient proved a phone or CPF in the conversation (Messenger and Instagram ids
    carry neither; messaging/verification.py sends the one-time code): join them with the
    patient already known by it, or record it. Returns the patient the conversation now
    belongs to; callers re-read rows they hold."""
    patient = await session.get_one(User, patient_id)
    other = await claimed_owner(session, phone=phone, cpf=cpf)
    if other is not None and other.id != patient.id:
        await merge_patients(session, source=patient, target=other)
        return other
    if cpf and patient.cpf is None:
        patient.cpf = cpf
    if phone and patient.phone_e164 is None:
        await set_proved_phone(session, patient, phone)
    return patient


async def merge_patients(session: AsyncSession, *, source: User, target: User) -> None:
    """Everything `source` owns (identities, conversations, messages, appointments...) moves
    to `target`; `source` is kept, deactivated, so nothing that points to it breaks. What the
    target's record lacks (name, e-mail with its proof, CPF, phone, preferences) it takes
    from the source's; notes are kept from both."""
    for table in Base.metadata.sorted_tables:
        column = table.c.get("patient_id")
        if column is None or not any(fk.column.table.name == "users" for fk in column.foreign_keys):
            continue
        await session.execute(update(table).where(column == source.id).values(patient_id=target.id))
    phone, source.phone_e164 = source.phone_e164, None
    source_profile = await session.get(PatientProfile, source.id)
    proved = source_profile is not None and source_profile.phone_match_key is not None
    if source_profile is not None:
        source_profile.phone_match_key = None
    if phone and target.phone_e164 is None:
        if proved:
            await set_proved_phone(session, target, phone)
        else:  # only typed on the source: it stays typed, matching nothing
            target.phone_e164 = phone
    if source.email and target.email is None:
        target.email_verified_at = source.email_verified_at  # its proof goes with it
    for field_name in ("name", "email", "cpf"):
        value = getattr(source, field_name)
        if value and getattr(target, field_name) is None:
            # Unique columns: free the value on the source first.
            setattr(source, field_name, None)
            await session.flush()
            setattr(target, field_name, value)
    if source_profile is not None:
        await _merge_profiles(session, source_profile, target)
    source.is_active = False
    source.merged_into_id = target.id
    log.info("patient %s merged into patient %s", source.id, target.id)


async def _merge_profiles(session: AsyncSession, source: PatientProfile, target: User) -> None:
    profile = await session.get(PatientProfile, target.id)
    if profile is None:
        profile = PatientProfile(user_id=target.id)
        session.add(profile)
    for field_name in ("preferred_channel", "birth_date", "lgpd_consent_at"):
        if getattr(profile, field_name) is None:
            setattr(profile, field_name, getattr(source, field_name))
    if source.notes:
        profile.notes = "\n\n".join(filter(None, (profile.notes, source.notes)))


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
        holder = (
            await session.execute(select(User).where(User.email == email))
        ).scalar_one_or_none()
        if holder is not None and holder.role == Role.PATIENT and holder.email_verified_at:
            return holder
        if holder is not None:
            # The address is on an account that never proved it (a sign-up typed it): the
            # writer is not that account; a new patient, without the address it holds.
            email = None
    return await create_patient(
        session, name=display_name, phone=phone, email=email, channel=channel
    )
