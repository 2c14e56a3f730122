"""Single-use, short-lived links sent by e-mail (verify an address, reset a password). The
token travels only in the link; the database keeps its SHA-256."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.auth import token_hash
from core.errors import BadRequest
from models import AccountToken, TokenPurpose, User, utcnow

# The pages the links open (web/account.py).
VERIFY_PAGE = "verificar-email"
RESET_PAGE = "redefinir-senha"

LIFETIMES = {
    TokenPurpose.VERIFY_EMAIL: timedelta(hours=24),
    TokenPurpose.RESET_PASSWORD: timedelta(minutes=30),
}


class InvalidLink(BadRequest):
    """A link already used, expired or never issued (400)."""

    code = "error.invalid_link"


async def issue(session: AsyncSession, user_id: int, purpose: TokenPurpose) -> str:
    """A new link for `purpose`; the user's earlier unused ones for it stop working."""
    now = utcnow()
    await session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user_id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        AccountToken(
            token_hash=token_hash(token),
            user_id=user_id,
            purpose=purpose,
            created_at=now,
            expires_at=now + LIFETIMES[purpose],
        )
    )
    return token


async def spend(session: AsyncSession, token: str, purpose: TokenPurpose) -> User | None:
    """The active user the link is for, spending it; None when it is unknown, used or
    expired."""
    query = (
        select(AccountToken)
        .where(AccountToken.token_hash == token_hash(token), AccountToken.purpose == purpose)
        .with_for_update()
    )
    found = (await session.execute(query)).scalar_one_or_none()
    now = utcnow()
    if found is None or found.used_at is not None or found.expires_at <= now:
        return None
    found.used_at = now
    user = await session.get(User, found.user_id)
    return user if user is not None and user.is_active else None


def link(base_url: str, page: str, token: str) -> str:
    """The page's address with the token in the fragment: browsers never send a fragment,
    so it stays out of access logs and Referer headers."""
    return f"{base_url}/{page}#token={token}"
