"""A login attempt, decided in one place: throttled (accounts/throttle.py), checked with the
same work and the same answer for unknown and known addresses, and either a new session or
a refusal, recorded in the audit log with the client's address (a failed one by a keyed hash
of the address typed, never the address itself)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from accounts import throttle
from accounts.auth import open_session, password_matches
from accounts.mail import Postbox, clinic_name
from accounts.patients import verification_mail
from core import audit
from core.audit import AuditAction
from core.contacts import normalize_email
from core.context import Context
from core.errors import Forbidden, Unauthenticated
from models import Role, User


class EmailNotVerified(Forbidden):
    """The right password for a patient account whose e-mail is not proved yet (403): a new
    link goes to the address."""

    code = "error.email_not_verified"


@dataclass(frozen=True)
class LoggedIn:
    user: User
    token: str  # the session cookie
    device: str  # the known-device cookie for this account (accounts/throttle.py)


async def attempt_login(
    ctx: Context, postbox: Postbox, email: str, password: str, *, ip: str, device: str | None
) -> LoggedIn:
    """A session for the account, or TooManyRequests (429), Unauthenticated (401, the same
    for an unknown address and a wrong password) or EmailNotVerified (403)."""
    secret = ctx.settings.session_secret
    account = throttle.account_key(secret, email)
    keys = throttle.login_keys(secret, account, ip, device)
    await throttle.check(ctx.limits, keys)
    user = await _active_user(ctx, email)
    if not await password_matches(password, user.password_hash if user else None) or not user:
        await throttle.count_failure(ctx.limits, keys)
        typed = normalize_email(email) or email
        async with ctx.db.session() as session:
            await audit.record(
                session,
                None,
                AuditAction.LOGIN_FAILED,
                ip=ip,
                email=audit.fingerprint(secret, typed),
            )
        raise Unauthenticated("error.invalid_login")
    await throttle.succeeded(ctx.limits, account)
    if user.role == Role.PATIENT and user.email_verified_at is None:
        clinic = await clinic_name(ctx)
        async with ctx.db.session() as session:
            postbox.post(await verification_mail(ctx, session, user, clinic))
        raise EmailNotVerified()
    async with ctx.db.session() as session:
        token = await open_session(session, user)
        await audit.record(session, user, AuditAction.LOGIN, ip=ip)
    return LoggedIn(user, token, throttle.device_cookie(secret, account))


async def _active_user(ctx: Context, email: str) -> User | None:
    normalized = normalize_email(email)
    if normalized is None:
        return None
    query = select(User).where(User.email == normalized, User.is_active.is_(True))
    async with ctx.db.session() as session:
        return (await session.execute(query)).scalar_one_or_none()
