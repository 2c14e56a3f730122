"""Proving a CPF or phone with a one-time code before anything is linked to it.

A patient on a channel whose ids carry no phone (Messenger, Instagram, the site widget) may
type the CPF or phone of a patient the clinic already knows. Typing proves nothing, and
whoever types someone else's CPF must never get their history or appointments (LGPD: this is
health data). So a claim is opened and a 6-digit code goes to the known patient through a
channel whose phone a provider proved (WhatsApp, SMS, a Telegram contact shared by its
owner), never to a phone someone typed. Only the code typed back in the claimant's
conversation, in time and within a few attempts, joins the two
(`messaging.identities.link_claimed_contact`); anything else leaves them apart.

The conversation must not tell whether the CPF or phone is known (enumeration): whatever is
typed opens a claim and gets the same answer. When nobody has it, its owner cannot be sent a
code, or too many codes went out today, the claim is a decoy: no owner, no destination, no
code, so wrong codes, expiry and "pular" go exactly as for a real one. A real claim whose code
the provider refuses goes on as a decoy too; only staff are told (`send_code`).

A patient also proves their own typed phone (portal): the code goes to that phone, on
WhatsApp when the clinic has it enabled, else by SMS; the right code back makes the phone
theirs (`prove_own_phone`).

Who does what:
- the action server (bot/actions/identity.py) opens the claim (`open_claim`), asks for the
  code and checks it (`check_code`), which links on success;
- the action server cannot deliver, so the question carries the custom message
  `{"identity_code": {"claim": id}}`, which the channel's Sender in the Rasa process hands
  to `send_code`: it draws the code, keeps only its HMAC, and delivers it sealed (the
  history shows that a code was sent, never the code; it is not retried). The code never
  passes through Rasa's tracker, the database or the logs. The portal calls `send_code`
  itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ProviderChannel
from core import audit
from core.audit import AuditAction
from core.catalog import t
from core.contacts import phone_match_key
from core.context import Context
from core.errors import BadRequest, Conflict, TooManyRequests
from core.events import BOT_HANDOFF, message_event
from messaging.history import open_conversation, record_outbound
from messaging.identities import (
    claimed_owner,
    create_patient,
    link_claimed_contact,
    merge_patients,
    phone_address,
    phone_holders,
    set_proved_phone,
    verified_channels,
)
from messaging.outbound import Sealed, send
from models import (
    OPEN_CLAIM_STATUSES,
    AuthorKind,
    ChannelIdentity,
    ClaimKind,
    ClaimStatus,
    ClinicProfile,
    Conversation,
    DeliveryStatus,
    IdentityClaim,
    Message,
    PatientProfile,
    User,
)
from models.base import StrEnum

log = logging.getLogger(__name__)

# Channels whose ids carry no phone: a CPF or phone typed there is proved with a code.
CLAIMABLE_CHANNELS = frozenset({"messenger", "instagram", "webchat"})
CODE_DIGITS = 6
CODE_MINUTES = 10
CODE_TTL = timedelta(minutes=CODE_MINUTES)
MAX_WRONG_CODES = 3
# Codes asked per claimant, and sent to one patient or phone, in a day: beyond that no code
# goes (nobody can make the clinic flood a patient's WhatsApp with codes).
MAX_CLAIMS_PER_DAY = 3
DAY = timedelta(days=1)
# The approved template a channel sends outside its messaging window: on WhatsApp Cloud an
# "authentication" template with a copy-code button; on Twilio TWILIO_CODE_CONTENT_SID.
CODE_TEMPLATE = "codigo_verificacao"
# The handoff reason when a person must confirm who the patient is.
CONFIRM_IDENTITY = "confirmar_identidade"
# The handoff reason when a known patient's code could not be delivered to them.
CODE_NOT_DELIVERED = "codigo_nao_entregue"
# Where a patient's own phone is sent its code: WhatsApp when enabled, else Twilio's SMS.
WHATSAPP, SMS = "whatsapp", "twilio"


class Check(StrEnum):
    LINKED = "linked"
    WRONG = "wrong"
    REFUSED = "refused"  # the last allowed attempt was wrong
    EXPIRED = "expired"
    ASK_STAFF = "ask_staff"  # the record changed since the code went out, or holds a conflict


@dataclass(frozen=True)
class Checked:
    result: Check
    remaining: int = 0  # attempts left after a wrong code
    # A phone proved that other patients with an account hold: the identity the code went
    # to (where staff reach whoever proved it) and those patients, for staff to sort out.
    destination_id: int | None = None
    holders: tuple[int, ...] = ()


def code_hash(secret: str, claim_id: int, code: str) -> str:
    """Keyed, so the stored hash of a six-digit code cannot be reversed from the database
    alone; per claim, so equal codes of two claims hash differently."""
    return hmac.new(secret.encode(), f"{claim_id}:{code}".encode(), hashlib.sha256).hexdigest()


async def _claims_today(session: AsyncSession, match: ColumnElement[bool], now: datetime) -> int:
    query = select(func.count(IdentityClaim.id)).where(match, IdentityClaim.created_at > now - DAY)
    return (await session.execute(query)).scalar_one()


async def open_claim(
    session: AsyncSession,
    claimant_id: int,
    *,
    cpf: str | None = None,
    phone: str | None = None,
    now: datetime,
) -> None:
    """The claimant typed this CPF (or phone; one of them): a claim whose code goes to the
    verified channel of the other patient who has it, or a decoy that sends nothing. The
    claimant cannot tell which."""
    owner = await claimed_owner(session, cpf=cpf, phone=phone)
    destination: ChannelIdentity | None = None
    if owner is not None and owner.id != claimant_id:
        channels = await verified_channels(session, patient_id=owner.id)
        if phone:  # the code goes to that phone, not to another of the patient's
            channels = [c for c in channels if c.verified_phone == phone]
        flood = or_(IdentityClaim.claimant_id == claimant_id, IdentityClaim.owner_id == owner.id)
        if channels and await _claims_today(session, flood, now) < MAX_CLAIMS_PER_DAY:
            destination = channels[0]
    session.add(
        IdentityClaim(
            claimant_id=claimant_id,
            owner_id=destination.patient_id if destination else None,
            destination_id=destination.id if destination else None,
            claimed=ClaimKind.CPF if cpf else ClaimKind.PHONE,
            expires_at=now + CODE_TTL,
        )
    )


async def open_claim_of(
    session: AsyncSession, claimant_id: int, *, own_phone: bool = False
) -> IdentityClaim | None:
    """The claimant's latest claim still waiting for its code, expired or not: one typed in
    a conversation, or (`own_phone`) the proof of their own phone."""
    own = IdentityClaim.claimed == ClaimKind.OWN_PHONE
    query = (
        select(IdentityClaim)
        .where(
            IdentityClaim.claimant_id == claimant_id,
            IdentityClaim.status.in_(OPEN_CLAIM_STATUSES),
            own if own_phone else ~own,
        )
        .order_by(IdentityClaim.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def skip_claim(session: AsyncSession, claim_id: int) -> None:
    """The claimant goes on without the code ("pular"): the claim links nothing any more."""
    claim = await session.get_one(IdentityClaim, claim_id, with_for_update=True)
    if claim.status in OPEN_CLAIM_STATUSES:
        claim.status = ClaimStatus.SKIPPED


async def skipped_kinds(session: AsyncSession, claimant_id: int) -> set[str]:
    """What the claimant typed and then went on without proving: not asked again."""
    query = select(IdentityClaim.claimed).where(
        IdentityClaim.claimant_id == claimant_id, IdentityClaim.status == ClaimStatus.SKIPPED
    )
    return set((await session.execute(query)).scalars())


def code_channel(ctx: Context) -> str:
    """Where a patient's own phone gets its code: WhatsApp when the clinic has it enabled,
    else SMS (Twilio, or its outbox in development)."""
    return WHATSAPP if isinstance(ctx.senders.get(WHATSAPP), ProviderChannel) else SMS


async def open_phone_proof(
    session: AsyncSession, patient_id: int, *, channel: str, now: datetime
) -> int:
    """A claim that the patient's typed phone is theirs, with the code to go to that phone on
    `channel`; its id. Refused when there is no phone, it is proved already, or too many
    codes were asked today by this patient or for this phone."""
    patient = await session.get_one(User, patient_id, with_for_update=True)
    phone = patient.phone_e164
    if phone is None:
        raise BadRequest("error.no_phone")
    profile = await session.get(PatientProfile, patient_id)
    if profile is not None and profile.phone_match_key == phone_match_key(phone):
        raise Conflict("error.phone_already_proved")
    await _within_daily_codes(session, IdentityClaim.claimant_id == patient_id, now)
    destination = await _phone_destination(session, channel, phone)
    await _within_daily_codes(session, IdentityClaim.destination_id == destination.id, now)
    claim = IdentityClaim(
        claimant_id=patient_id,
        owner_id=destination.patient_id,
        destination_id=destination.id,
        claimed=ClaimKind.OWN_PHONE,
        expires_at=now + CODE_TTL,
    )
    session.add(claim)
    await session.flush()
    return claim.id


async def _within_daily_codes(
    session: AsyncSession, match: ColumnElement[bool], now: datetime
) -> None:
    if await _claims_today(session, match, now) < MAX_CLAIMS_PER_DAY:
        return
    oldest = await session.scalar(
        select(func.min(IdentityClaim.created_at)).where(
            match, IdentityClaim.created_at > now - DAY
        )
    )
    raise TooManyRequests(((oldest or now) + DAY - now).total_seconds())


async def _phone_destination(session: AsyncSession, channel: str, phone: str) -> ChannelIdentity:
    """The identity on `channel` that reaches this phone. When nobody wrote from it yet, a
    new one on a patient of its own: not the requester's, for until the code comes back,
    whoever writes from that phone must not land in the requester's history."""
    address = phone_address(channel, phone)
    query = (
        select(ChannelIdentity)
        .where(
            ChannelIdentity.channel == channel,
            or_(ChannelIdentity.external_id == address, ChannelIdentity.verified_phone == phone),
        )
        .order_by(ChannelIdentity.id)
        .limit(1)
    )
    if (found := (await session.execute(query)).scalar_one_or_none()) is not None:
        return found
    holder = await create_patient(session, channel=channel)
    identity = ChannelIdentity(channel=channel, external_id=address, patient_id=holder.id)
    session.add(identity)
    await session.flush()
    return identity


async def send_code(ctx: Context, claim_id: int, claimant_id: int) -> bool:
    """After the claimant was told a code is coming: draw it, keep its HMAC, and deliver it
    sealed to the claim's destination (a decoy has none: nothing goes, nothing can match).
    True when the claimant can expect it (sent now or before); False when it could not go.
    A claim of someone else's CPF or phone whose code could not go is always True: it goes
    on as a decoy would, and staff are told (`_undelivered_as_a_decoy`)."""
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    async with ctx.db.session() as session:
        claim = await session.get(IdentityClaim, claim_id, with_for_update=True)
        if claim is None or claim.claimant_id != claimant_id:
            return False
        if claim.status != ClaimStatus.PENDING:
            return claim.status == ClaimStatus.SENT
        claim.status = ClaimStatus.SENT
        if claim.destination_id is None:
            return True
        claim.code_hash = code_hash(ctx.settings.session_secret, claim.id, code)
        own = claim.claimed == ClaimKind.OWN_PHONE
        destination = await session.get_one(ChannelIdentity, claim.destination_id)
        conversation = await open_conversation(session, destination)
        clinic = await session.scalar(select(ClinicProfile.name).limit(1))
    sealed = Sealed(
        text=t(
            "identity.phone_code" if own else "identity.code",
            clinica=clinic or t("reminder.clinic_fallback"),
            codigo=code,
            minutos=CODE_MINUTES,
        ),
        template={
            "name": CODE_TEMPLATE,
            "language": "pt_BR",
            "parameters": [code],
            "copy_code": code,
        },
    )
    message = await send(
        ctx,
        conversation.id,
        text=t(
            "identity.phone_code_recorded" if own else "identity.code_recorded",
            minutos=CODE_MINUTES,
        ),
        author_kind=AuthorKind.SYSTEM,
        sealed=sealed,
    )
    async with ctx.db.session() as session:
        status = await session.scalar(
            select(Message.delivery_status).where(Message.id == message.id)
        )
    if status != DeliveryStatus.FAILED:
        log.info("identity claim %s: code sent on %s", claim_id, destination.channel)
        return True
    log.warning("identity claim %s: the code could not be delivered", claim_id)
    if own:  # the patient's own phone: telling them reveals nothing about anyone else
        async with ctx.db.session() as session:
            claim = await session.get_one(IdentityClaim, claim_id, with_for_update=True)
            claim.status = ClaimStatus.FAILED
        return False
    await _undelivered_as_a_decoy(ctx, claim_id, conversation)
    return True


async def _undelivered_as_a_decoy(ctx: Context, claim_id: int, conversation: Conversation) -> None:
    """A code for a known patient that could not go: telling the claimant so would tell
    them the CPF or phone is on a record, which a decoy never does. So the claim goes on as
    a decoy (no code can match; wrong codes, "pular" and expiry answer alike), and the known
    patient's conversation, where the code failed, goes to the staff queue with a note: a
    person confirms by other means."""
    async with ctx.db.session() as session:
        claim = await session.get_one(IdentityClaim, claim_id, with_for_update=True)
        claim.code_hash = None
        note = await record_outbound(
            session,
            conversation,
            text=t(
                "identity.code_not_delivered_note",
                cadastro=claim.claimant_id,
                dado="CPF" if claim.claimed == ClaimKind.CPF else "telefone",
            ),
            author_kind=AuthorKind.SYSTEM,
            internal=True,
        )
    await ctx.bus.publish(message_event(note, conversation))
    await ctx.bus.publish(
        {"type": BOT_HANDOFF, "conversation_id": conversation.id, "reason": CODE_NOT_DELIVERED}
    )


async def check_code(
    session: AsyncSession, claim_id: int, typed: str, *, secret: str, now: datetime
) -> Checked:
    """Check what the claimant typed against the claim's code, in one locking transaction:
    the right code in time links the claimant to the known patient (or proves their own
    phone); wrong ones count, and on a decoy every code is wrong."""
    claim = await session.get(IdentityClaim, claim_id, with_for_update=True)
    if claim is None or claim.status not in OPEN_CLAIM_STATUSES:
        return Checked(Check.EXPIRED)
    if now >= claim.expires_at:
        claim.status = ClaimStatus.EXPIRED
        return Checked(Check.EXPIRED)
    digits = "".join(c for c in typed if c.isdigit())
    expected = claim.code_hash or ""
    if not expected or not hmac.compare_digest(expected, code_hash(secret, claim.id, digits)):
        claim.wrong_attempts += 1
        if claim.wrong_attempts >= MAX_WRONG_CODES:
            claim.status = ClaimStatus.REFUSED
            log.info("identity claim %s refused after %s wrong codes", claim.id, MAX_WRONG_CODES)
            return Checked(Check.REFUSED)
        return Checked(Check.WRONG, remaining=MAX_WRONG_CODES - claim.wrong_attempts)
    # Only a claim with a destination was sent a code, so only such a claim gets here.
    assert claim.owner_id is not None and claim.destination_id is not None
    destination = await session.get_one(ChannelIdentity, claim.destination_id)
    if claim.claimed == ClaimKind.OWN_PHONE:
        return await _prove_own_phone(session, claim, destination)
    return await _link(session, claim, await session.get_one(User, claim.owner_id), destination)


async def _link(
    session: AsyncSession, claim: IdentityClaim, owner: User, destination: ChannelIdentity
) -> Checked:
    claimed = (
        {"cpf": owner.cpf}
        if claim.claimed == ClaimKind.CPF
        else {"phone": destination.verified_phone}
    )
    # The code proved control of the owner's channel: join exactly that patient, and only
    # while the CPF or phone still points to them.
    current = await claimed_owner(session, **claimed)
    if current is None or current.id != owner.id or destination.patient_id != owner.id:
        claim.status = ClaimStatus.FAILED
        return Checked(Check.ASK_STAFF)
    await link_claimed_contact(session, claim.claimant_id, **claimed)
    claim.status = ClaimStatus.LINKED
    await audit.record(
        session,
        None,
        AuditAction.PATIENT_LINKED_BY_CODE,
        patient_id=owner.id,
        merged_patient_id=claim.claimant_id,
        claim_id=claim.id,
    )
    return Checked(Check.LINKED)


def _reaches(identity: ChannelIdentity, phone: str) -> bool:
    return phone == identity.verified_phone or (
        identity.external_id == phone_address(identity.channel, phone)
    )


async def _prove_own_phone(
    session: AsyncSession, claim: IdentityClaim, destination: ChannelIdentity
) -> Checked:
    """The code sent to the patient's typed phone came back: the phone is theirs. Patients
    it was proved for before, and the one the code's address was made for, are joined to
    them as `link_phone` joins, unless one has an account: a person sorts that out."""
    patient = await session.get_one(User, claim.claimant_id, with_for_update=True)
    phone = patient.phone_e164
    if phone is None or not _reaches(destination, phone):
        claim.status = ClaimStatus.EXPIRED  # the phone changed since the code went out
        return Checked(Check.EXPIRED)
    holders = await phone_holders(session, phone, besides=patient.id, also=destination)
    if with_account := [h.id for h in holders if h.password_hash is not None]:
        claim.status = ClaimStatus.FAILED
        await audit.record(
            session,
            None,
            AuditAction.PHONE_PROOF_CONFLICT,
            patient_id=patient.id,
            other_patient_ids=with_account,
            claim_id=claim.id,
        )
        return Checked(Check.ASK_STAFF, destination_id=destination.id, holders=tuple(with_account))
    for holder in holders:
        await merge_patients(session, source=holder, target=patient)
    await session.refresh(destination)
    destination.verified_phone = phone  # it reached the patient: as if they wrote from it
    await set_proved_phone(session, patient, phone)
    claim.status = ClaimStatus.LINKED
    await audit.record(
        session,
        None,
        AuditAction.PHONE_PROVED,
        patient_id=patient.id,
        merged_patient_ids=[h.id for h in holders],
        claim_id=claim.id,
    )
    return Checked(Check.LINKED)
