"""The staff second factor: TOTP (RFC 6238, 30 s steps, 6 digits) with single-use recovery
codes, and the clinic's policy of who must have one (`core.access.must_have_second_factor`).

- Enrolment: a new key is pending until the first valid code confirms it; only then is it
  asked at login, and ten recovery codes are shown, once (the database keeps their SHA-256).
- A code is accepted within one step either side of now (clock drift), and never twice: the
  step of the last code accepted is kept and no code of that step or before is taken again
  (RFC 6238 §5.2), so a code seen over a shoulder or in a proxy log is worthless.
- Between the password and the code the browser holds a short-lived signed token naming the
  account (`pending_token`), not a session: it opens nothing by itself.

Keys are stored sealed with AES-GCM under `DATA_ENCRYPTION_KEY` (core/encryption.py), bound
to their account: a leaked database row, dump or backup alone does not give the key. A key
sealed under a key since rotated out of first place is sealed again at its next use.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import time
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import access, audit
from core.audit import AuditAction
from core.encryption import DataKeys
from core.errors import BadRequest, NotFound, Unauthenticated
from models import (
    STAFF_ROLES,
    RecoveryCode,
    SecondFactor,
    SecondFactorPolicy,
    SecurityPolicy,
    User,
    utcnow,
)
from models.db import Database

ISSUER = "omniclinica"
RECOVERY_CODES = 10
# Steps accepted either side of the current one.
DRIFT_STEPS = 1
# How long the browser has to type the code after the right password.
PENDING_SECONDS = 300
_RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no l, o, 0, 1 to misread


class InvalidCode(Unauthenticated):
    """A wrong, stale or already used code (401)."""

    code = "error.invalid_code"


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for typing into the app by hand
    uri: str  # otpauth://, what the QR code holds
    qr_svg: str


@dataclass(frozen=True)
class Status:
    active: bool
    required: bool


# The clinic's policy.


async def current_policy(session: AsyncSession) -> SecondFactorPolicy:
    row = (await session.execute(select(SecurityPolicy).limit(1))).scalar_one_or_none()
    return row.second_factor if row is not None else SecondFactorPolicy.MANAGERS


async def set_policy(
    db: Database, admin: User, value: object, *, ip: str | None
) -> SecondFactorPolicy:
    try:
        policy = SecondFactorPolicy(str(value))
    except ValueError:
        raise BadRequest("error.invalid_policy") from None
    async with db.session() as session:
        row = (
            await session.execute(select(SecurityPolicy).limit(1).with_for_update())
        ).scalar_one_or_none()
        if row is None:
            row = SecurityPolicy()
            session.add(row)
        row.second_factor = policy
        await audit.record(
            session,
            admin,
            AuditAction.SETTINGS_CHANGED,
            ip=ip,
            setting="second_factor",
            value=str(policy),
        )
    return policy


async def is_active(session: AsyncSession, user_id: int) -> bool:
    factor = await session.get(SecondFactor, user_id)
    return factor is not None and factor.confirmed_at is not None


async def status(session: AsyncSession, user: User) -> Status:
    required = access.must_have_second_factor(user, await current_policy(session))
    return Status(active=await is_active(session, user.id), required=required)


async def must_enrol(session: AsyncSession, user: User) -> bool:
    """Whether the policy makes this account have a second factor it does not have yet:
    until it enrols it may do nothing else."""
    found = await status(session, user)
    return found.required and not found.active


async def enrolled_user_ids(session: AsyncSession) -> set[int]:
    query = select(SecondFactor.user_id).where(SecondFactor.confirmed_at.is_not(None))
    return set((await session.execute(query)).scalars())


# Enrolment and reset.


def _qr_svg(uri: str) -> str:
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", xmldecl=False, scale=4, border=2)
    return out.getvalue().decode()


def _purpose(user_id: int) -> str:
    """What a sealed key is for: its account's second factor, so it opens in no other row."""
    return f"second_factor:{user_id}"


def seal_secret(keys: DataKeys, user_id: int, secret: str) -> str:
    return keys.seal(secret, _purpose(user_id))


def open_secret(keys: DataKeys, user_id: int, sealed: str) -> str:
    return keys.unseal(sealed, _purpose(user_id))


def _totp(keys: DataKeys, factor: SecondFactor) -> pyotp.TOTP:
    return pyotp.TOTP(open_secret(keys, factor.user_id, factor.secret))


async def start_enrolment(db: Database, keys: DataKeys, user: User) -> Enrolment:
    """A new pending key for the account (replacing an unconfirmed one); refused while a
    confirmed one is active (an admin resets it first)."""
    secret = pyotp.random_base32()
    async with db.session() as session:
        factor = await session.get(SecondFactor, user.id, with_for_update=True)
        if factor is not None and factor.confirmed_at is not None:
            raise BadRequest("error.second_factor_active")
        if factor is None:
            factor = SecondFactor(user_id=user.id)
            session.add(factor)
        factor.secret = seal_secret(keys, user.id, secret)
        factor.created_at = utcnow()
        factor.last_step = None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email or str(user.id), issuer_name=ISSUER)
    return Enrolment(secret=secret, uri=uri, qr_svg=_qr_svg(uri))


async def confirm_enrolment(
    db: Database, keys: DataKeys, user: User, code: object, *, ip: str | None
) -> list[str]:
    """Activate the pending key with its first valid code: the account's recovery codes, to
    be shown once."""
    async with db.session() as session:
        factor = await session.get(SecondFactor, user.id, with_for_update=True)
        if factor is None or factor.confirmed_at is not None:
            raise BadRequest("error.no_enrolment")
        step = _matching_step(keys, factor, code)
        if step is None:
            # 400, not InvalidCode's 401: the session is fine, only the code is wrong.
            raise BadRequest("error.invalid_code")
        factor.last_step = step
        factor.confirmed_at = utcnow()
        codes = await _new_recovery_codes(session, user.id)
        await audit.record(session, user, AuditAction.SECOND_FACTOR_ENROLLED, ip=ip)
    return codes


async def _new_recovery_codes(session: AsyncSession, user_id: int) -> list[str]:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(user_id=user_id, code_hash=_hashed(code)) for code in codes)
    return codes


def _recovery_code() -> str:
    """Ten characters of a 32-letter alphabet (50 bits), shown as two groups of five."""
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _hashed(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def reset(db: Database, admin: User, user_id: int, *, ip: str | None) -> None:
    """An admin removes another staff member's second factor (a lost phone and no recovery
    code): they enrol again at their next login if the policy asks for it."""
    if user_id == admin.id:
        raise BadRequest("error.cannot_reset_own_second_factor")
    async with db.session() as session:
        user = await session.get(User, user_id)
        if user is None or user.role not in STAFF_ROLES:
            raise NotFound()
        await session.execute(delete(SecondFactor).where(SecondFactor.user_id == user_id))
        await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        await audit.record(
            session, admin, AuditAction.SECOND_FACTOR_RESET, ip=ip, target_user_id=user_id
        )


# Codes at login.


def _normalized(code: object) -> str:
    return "".join(str(code).split()).replace("-", "").lower() if isinstance(code, str) else ""


def _matching_step(keys: DataKeys, factor: SecondFactor, code: object) -> int | None:
    """The step whose code `code` is, within the drift and after the last one accepted."""
    typed = _normalized(code)
    if len(typed) != 6 or not typed.isdigit():
        return None
    totp = _totp(keys, factor)
    now = totp.timecode(utcnow())
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        fresh = factor.last_step is None or step > factor.last_step
        if fresh and hmac.compare_digest(totp.generate_otp(step), typed):
            return step
    return None


async def spend_code(
    session: AsyncSession, keys: DataKeys, user_id: int, code: object
) -> str | None:
    """Accept a TOTP code or an unused recovery code for the account, once: "totp" or
    "recovery" for what was spent, None when it is neither."""
    factor = await session.get(SecondFactor, user_id, with_for_update=True)
    if factor is None or factor.confirmed_at is None:
        return None
    step = _matching_step(keys, factor, code)
    if step is not None:
        factor.last_step = step
        if not keys.is_current(factor.secret):  # sealed under a key rotated out since
            factor.secret = seal_secret(keys, user_id, _totp(keys, factor).secret)
        return "totp"
    typed = _normalized(code)
    if len(typed) != 10:
        return None
    query = (
        select(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _hashed(f"{typed[:5]}-{typed[5:]}"),
            RecoveryCode.used_at.is_(None),
        )
        .with_for_update()
    )
    recovery = (await session.execute(query)).scalar_one_or_none()
    if recovery is None:
        return None
    recovery.used_at = utcnow()
    return "recovery"


# The token between the password and the code.


def _signature(key: str, payload: str) -> str:
    message = f"second-factor|{payload}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:32]


def pending_token(key: str, user_id: int) -> str:
    """What the browser presents with the code: the account, a deadline and a nonce, signed
    with the clinic's secret."""
    payload = f"{user_id}.{int(time.time()) + PENDING_SECONDS}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{_signature(key, payload)}"


def pending_account(key: str, token: object) -> tuple[int, str] | None:
    """The account id and nonce of a genuine token still in time, else None."""
    if not isinstance(token, str):
        return None
    payload, _, signature = token.rpartition(".")
    parts = payload.split(".")
    if len(parts) != 3 or not hmac.compare_digest(signature, _signature(key, payload)):
        return None
    user_id, deadline, nonce = parts
    if not user_id.isdigit() or not deadline.isdigit() or int(deadline) < time.time():
        return None
    return int(user_id), nonce
