"""Changing a password (logged in, knowing the current one) and resetting a forgotten one by
a single-use link mailed to the account's address."""

from __future__ import annotations

from sqlalchemy import select

from accounts import throttle, tokens
from accounts.admin import MIN_PASSWORD_LENGTH
from accounts.auth import close_sessions, new_password_hash, password_matches
from accounts.mail import AccountMail, clinic_name
from accounts.tokens import RESET_PAGE, InvalidLink
from core.catalog import t
from core.context import Context
from core.errors import BadRequest
from models import TokenPurpose, User, utcnow

RESET_MINUTES = int(tokens.LIFETIMES[TokenPurpose.RESET_PASSWORD].total_seconds() // 60)


def _new_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest("error.password_too_short", minimum=MIN_PASSWORD_LENGTH)
    return password


async def change_password(
    ctx: Context, user_id: int, current: object, new: object, *, session_token: str
) -> None:
    """The logged-in user's new password; every other session of the account ends. Wrong
    current passwords count as failed logins: a borrowed session cannot guess it freely."""
    password = _new_password(new)
    async with ctx.db.session() as session:
        user = await session.get_one(User, user_id)
        account = throttle.account_key(ctx.settings.session_secret, user.email or "")
    keys = {account: throttle.LIMIT}
    await throttle.check(ctx.limits, keys)
    if not await password_matches(str(current or ""), user.password_hash):
        await throttle.count_failure(ctx.limits, keys)
        raise BadRequest("error.wrong_password")
    password_hash = await new_password_hash(password)
    async with ctx.db.session() as session:
        user = await session.get_one(User, user_id, with_for_update=True)
        user.password_hash = password_hash
        await close_sessions(session, user.id, keep=session_token)


async def request_reset(ctx: Context, email: str) -> AccountMail | None:
    """The reset link for the account with this address, if there is one (to be posted);
    the requester is told the same either way."""
    async with ctx.db.session() as session:
        query = select(User).where(User.email == email, User.is_active.is_(True))
        user = (await session.execute(query)).scalar_one_or_none()
        if user is None or user.email is None:
            return None
        token = await tokens.issue(session, user.id, TokenPurpose.RESET_PASSWORD)
    text = t(
        "mail.reset",
        clinica=await clinic_name(ctx),
        minutos=RESET_MINUTES,
        link=tokens.link(ctx.settings.public_base_url, RESET_PAGE, token),
    )
    return AccountMail(user.email, text)


async def reset_password(ctx: Context, token: str, new: object) -> User:
    """Follow a reset link: the new password, every session ended, the account's login lock
    lifted. The link reached the account's mailbox, so it also proves the address."""
    password_hash = await new_password_hash(_new_password(new))
    async with ctx.db.session() as session:
        user = await tokens.spend(session, token, TokenPurpose.RESET_PASSWORD)
        if user is None:
            raise InvalidLink()
        user.password_hash = password_hash
        user.email_verified_at = user.email_verified_at or utcnow()
        await close_sessions(session, user.id)
    await throttle.lift(
        ctx.limits, throttle.account_key(ctx.settings.session_secret, user.email or "")
    )
    return user
