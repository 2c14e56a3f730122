"""Passwords, login sessions and the audit trail of staff reads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.identity import normalize_email
from models import AuditLog, LoginSession, User, utcnow

SESSION_LIFETIME = timedelta(hours=12)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    normalized = normalize_email(email)
    user = None
    if normalized:
        query = select(User).where(User.email == normalized, User.is_active.is_(True))
        user = (await session.execute(query)).scalar_one_or_none()
    # Hash even for unknown e-mails so response time does not reveal who has an account.
    valid = verify_password(password, user.password_hash if user else hash_password("x"))
    return user if user and valid else None


async def open_session(session: AsyncSession, user: User) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        LoginSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return token


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    query = (
        select(User)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(
            LoginSession.token_hash == _token_hash(token),
            LoginSession.expires_at > utcnow(),
            User.is_active.is_(True),
        )
    )
    return (await session.execute(query)).scalar_one_or_none()


async def close_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(LoginSession).where(LoginSession.token_hash == _token_hash(token)))


def audit(
    session: AsyncSession,
    actor: User,
    action: str,
    *,
    patient_id: int | None = None,
    conversation_id: int | None = None,
    ip: str | None = None,
    **details: object,
) -> None:
    session.add(
        AuditLog(
            actor_id=actor.id,
            action=action,
            patient_id=patient_id,
            conversation_id=conversation_id,
            ip=ip,
            details=details,
        )
    )
