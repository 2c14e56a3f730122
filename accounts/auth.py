"""Passwords and login sessions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.contacts import normalize_email
from models import LoginSession, User, utcnow

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
    return (await session_users(session, [token])).get(token)


async def session_users(session: AsyncSession, tokens: Collection[str]) -> dict[str, User]:
    """The user each token still logs in: its session neither ended nor expired, the account
    active. Tokens missing from the answer log nobody in."""
    by_hash = {_token_hash(token): token for token in tokens}
    if not by_hash:
        return {}
    query = (
        select(LoginSession.token_hash, User)
        .join(User, LoginSession.user_id == User.id)
        .where(
            LoginSession.token_hash.in_(by_hash),
            LoginSession.expires_at > utcnow(),
            User.is_active.is_(True),
        )
    )
    return {by_hash[token_hash]: user for token_hash, user in await session.execute(query)}


async def close_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
