"""Proving a claimed CPF or phone with a one-time code before two patients are joined.

A patient on a channel whose ids carry no phone (Messenger, Instagram, the site widget) may
type the CPF or phone of a patient the clinic already knows. Typing proves nothing, and
whoever types someone else's CPF must never get their history or appointments (LGPD: this is
health data). So a claim is opened and a 6-digit code goes to the known patient through a
channel whose phone a provider proved (WhatsApp, SMS, a Telegram contact shared by its
owner), never to a phone someone typed. Only the code typed back in the claimant's
conversation, in time and within a few attempts, joins the two
(`messaging.identities.link_claimed_contact`); anything else leaves them apart.

Who does what:
- the action server (bot/actions/identity.py) opens the claim (`open_claim`), asks for the
  code and checks it (`check_code`), which links on success;
- the action server cannot deliver, so the question carries the custom message
  `{"identity_code": {"claim": id}}`, which the channel's Sender in the Rasa process hands
  to `send_code`: it draws the code, keeps only its HMAC, and delivers it sealed (the
  history shows that a code was sent, never the code; it is not retried). The code never
  passes through Rasa's tracker, the database or the logs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import audit
from core.audit import AuditAction
from core.catalog import t
from core.context import Context
from messaging.history import open_conversation
from messaging.identities import claimed_owner, link_claimed_contact, verified_channels
from messaging.outbound import Sealed, send
from models import (
    OPEN_CLAIM_STATUSES,
    AuthorKind,
    ChannelIdentity,
    ClaimStatus,
    ClinicProfile,
    DeliveryStatus,
    IdentityClaim,
    Message,
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
# Codes asked per claimant, and sent to one patient, in a day: beyond that a person checks
# (nobody can make the clinic flood a patient's WhatsApp with codes).
MAX_CLAIMS_PER_DAY = 3
# The approved template a channel sends outside its messaging window: on WhatsApp Cloud an
# "authentication" template with a copy-code button; on Twilio TWILIO_CODE_CONTENT_SID.
CODE_TEMPLATE = "codigo_verificacao"
# The handoff reason when a person must confirm who the patient is.
CONFIRM_IDENTITY = "confirmar_identidade"


class Opening(StrEnum):
    NOBODY = "nobody"  # nobody else has this CPF or phone: it is the patient's own
    CLAIMED = "claimed"  # a code goes to the known patient's verified channel
    ASK_STAFF = "ask_staff"  # a known patient cannot be sent a code: a person checks


class Check(StrEnum):
    LINKED = "linked"
    WRONG = "wrong"
    REFUSED = "refused"  # the last allowed attempt was wrong
    EXPIRED = "expired"
    ASK_STAFF = "ask_staff"  # the record changed since the code went out


@dataclass(frozen=True)
class Checked:
    result: Check
    remaining: int = 0  # attempts left after a wrong code


def code_hash(secret: str, claim_id: int, code: str) -> str:
    """Keyed, so the stored hash of a six-digit code cannot be reversed from the database
    alone; per claim, so equal codes of two claims hash differently."""
    return hmac.new(secret.encode(), f"{claim_id}:{code}".encode(), hashlib.sha256).hexdigest()


def code_destination(identity: ChannelIdentity) -> dict[str, str]:
    """Where the code went, as the claimant is told it: the channel and the phone's last
    four digits, nothing that reveals the number."""
    if identity.channel == "twilio" and not identity.external_id.startswith("whatsapp:"):
        name = t("identity.sms")
    else:
        name = t(f"channel.{'whatsapp' if identity.channel == 'twilio' else identity.channel}")
    return {"canal": name, "final": (identity.verified_phone or "")[-4:]}


async def _recent_claims(
    session: AsyncSession, claimant_id: int, owner_id: int, now: datetime
) -> int:
    query = select(func.count(IdentityClaim.id)).where(
        or_(IdentityClaim.claimant_id == claimant_id, IdentityClaim.owner_id == owner_id),
        IdentityClaim.created_at > now - timedelta(days=1),
    )
    return (await session.execute(query)).scalar_one()


async def open_claim(
    session: AsyncSession,
    claimant_id: int,
    *,
    cpf: str | None = None,
    phone: str | None = None,
    now: datetime,
) -> Opening:
    """The claimant typed this CPF (or phone; one of them): open a claim when it belongs to
    another patient who has a verified channel to send the code to."""
    owner = await claimed_owner(session, cpf=cpf, phone=phone)
    if owner is None or owner.id == claimant_id:
        return Opening.NOBODY
    channels = await verified_channels(session, patient_id=owner.id)
    if phone:  # the code goes to that phone, not to another of the patient's
        channels = [c for c in channels if c.verified_phone == phone]
    if not channels or await _recent_claims(session, claimant_id, owner.id, now) >= (
        MAX_CLAIMS_PER_DAY
    ):
        return Opening.ASK_STAFF
    session.add(
        IdentityClaim(
            claimant_id=claimant_id,
            owner_id=owner.id,
            destination_id=channels[0].id,
            claimed="cpf" if cpf else "phone",
            expires_at=now + CODE_TTL,
        )
    )
    return Opening.CLAIMED


async def open_claim_of(session: AsyncSession, claimant_id: int) -> IdentityClaim | None:
    """The claimant's latest claim still waiting for its code, expired or not."""
    query = (
        select(IdentityClaim)
        .where(
            IdentityClaim.claimant_id == claimant_id,
            IdentityClaim.status.in_(OPEN_CLAIM_STATUSES),
        )
        .order_by(IdentityClaim.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def send_code(ctx: Context, claim_id: int, claimant_id: int) -> bool:
    """In the Rasa process, after the claimant was told a code is coming: draw it, keep its
    HMAC, and deliver it sealed to the known patient's verified channel. True when the
    claimant can expect it (sent now or before); False when it could not go."""
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    async with ctx.db.session() as session:
        claim = await session.get(IdentityClaim, claim_id, with_for_update=True)
        if claim is None or claim.claimant_id != claimant_id:
            return False
        if claim.status != ClaimStatus.PENDING:
            return claim.status == ClaimStatus.SENT
        claim.code_hash = code_hash(ctx.settings.session_secret, claim.id, code)
        claim.status = ClaimStatus.SENT
        destination = await session.get_one(ChannelIdentity, claim.destination_id)
        conversation = await open_conversation(session, destination)
        clinic = await session.scalar(select(ClinicProfile.name).limit(1))
    sealed = Sealed(
        text=t(
            "identity.code",
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
        text=t("identity.code_recorded", minutos=CODE_MINUTES),
        author_kind=AuthorKind.SYSTEM,
        sealed=sealed,
    )
    async with ctx.db.session() as session:
        status = await session.scalar(
            select(Message.delivery_status).where(Message.id == message.id)
        )
        if status == DeliveryStatus.FAILED:
            claim = await session.get_one(IdentityClaim, claim_id, with_for_update=True)
            claim.status = ClaimStatus.FAILED
    if status == DeliveryStatus.FAILED:
        log.warning("identity claim %s: the code could not be delivered", claim_id)
        return False
    log.info("identity claim %s: code sent on %s", claim_id, destination.channel)
    return True


async def check_code(
    session: AsyncSession, claim_id: int, typed: str, *, secret: str, now: datetime
) -> Checked:
    """Check what the claimant typed against the claim's code, in one locking transaction:
    the right code in time links the claimant to the known patient; wrong ones count."""
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
    return await _link(session, claim)


async def _link(session: AsyncSession, claim: IdentityClaim) -> Checked:
    owner = await session.get_one(User, claim.owner_id)
    destination = await session.get_one(ChannelIdentity, claim.destination_id)
    claimed = (
        {"cpf": owner.cpf} if claim.claimed == "cpf" else {"phone": destination.verified_phone}
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
