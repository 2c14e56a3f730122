"""Passwords and login sessions.

scrypt is deliberately slow (tens of milliseconds of CPU); on the event loop a handful of
logins a second would stall every socket and request of the process, so hashing runs in a
worker thread (hashlib releases the GIL while it works)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections.abc import Collection
from datetime import timedelta
from functools import cache

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import LoginSession, User, utcnow

SESSION_LIFETIME = timedelta(hours=12)
# A session's `last_seen_at` is written at most this often: sliding the idle deadline must
# not turn every request into a database write.
TOUCH_EVERY = timedelta(minutes=1)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


def hash_password(password: str) -> str:
    """Blocking: for scripts and tests. The web uses `new_password_hash`."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str | None) -> bool:
    """Blocking; always one scrypt, also for an account without a password (`stored` None),
    so the work does not tell the two apart."""
    real = bool(stored and stored.startswith("scrypt$"))
    _, salt, digest = (stored if real and stored else _dummy_hash()).split("$")
    candidate = _scrypt(password, base64.b64decode(salt))
    return real and hmac.compare_digest(candidate, base64.b64decode(digest))


@cache
def _dummy_hash() -> str:
    """What a password is checked against when there is no account: the same scrypt work."""
    return hash_password(secrets.token_urlsafe(16))


async def new_password_hash(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def password_matches(password: str, stored: str | None) -> bool:
    return await asyncio.to_thread(verify_password, password, stored)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(session: AsyncSession, user: User) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        LoginSession(
            token_hash=token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
            last_seen_at=now,
        )
    )
    return token


async def user_for_token(session: AsyncSession, token: str, *, idle: timedelta) -> User | None:
    """The user the token logs in, sliding its idle deadline: a request is activity."""
    user = (await session_users(session, [token], idle=idle)).get(token)
    if user is not None:
        now = utcnow()
        await session.execute(
            update(LoginSession)
            .where(
                LoginSession.token_hash == token_hash(token),
                LoginSession.last_seen_at < now - TOUCH_EVERY,
            )
            .values(last_seen_at=now)
        )
    return user


async def session_users(
    session: AsyncSession, tokens: Collection[str], *, idle: timedelta
) -> dict[str, User]:
    """The user each token still logs in: its session neither ended, expired nor idle for
    `idle`, the account active. Tokens missing from the answer log nobody in."""
    by_hash = {token_hash(token): token for token in tokens}
    if not by_hash:
        return {}
    now = utcnow()
    query = (
        select(LoginSession.token_hash, User)
        .join(User, LoginSession.user_id == User.id)
        .where(
            LoginSession.token_hash.in_(by_hash),
            LoginSession.expires_at > now,
            LoginSession.last_seen_at > now - idle,
            User.is_active.is_(True),
        )
    )
    return {by_hash[hashed]: user for hashed, user in await session.execute(query)}


async def close_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(LoginSession).where(LoginSession.token_hash == token_hash(token)))


async def close_sessions(session: AsyncSession, user_id: int, *, keep: str | None = None) -> None:
    """End every session of the account (a new password, a deactivation), but `keep`'s."""
    query = delete(LoginSession).where(LoginSession.user_id == user_id)
    if keep is not None:
        query = query.where(LoginSession.token_hash != token_hash(keep))
    await session.execute(query)
