"""A login attempt, decided in one place: throttled (accounts/throttle.py), checked with the
same work and the same answer for unknown and known addresses, and either a new session or
a refusal, recorded in the audit log with the client's address (a failed one by a keyed hash
of the address typed, never the address itself).

A staff account with a second factor (accounts/second_factor.py) gets no session for the
right password: it gets a short-lived signed token to present with a code. Wrong codes count
on the same limits as wrong passwords, and the account's failures are forgotten only once
the code is right — otherwise someone holding the password could re-enter it between
guesses and guess codes for ever."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from accounts import second_factor, throttle
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


@dataclass(frozen=True)
class CodeNeeded:
    """The right password for an account with a second factor: the code comes next."""

    pending: str  # accounts.second_factor.pending_token


async def attempt_login(
    ctx: Context, postbox: Postbox, email: str, password: str, *, ip: str, device: str | None
) -> LoggedIn | CodeNeeded:
    """A session for the account (or, with a second factor, the step before it), or
    TooManyRequests (429), Unauthenticated (401, the same for an unknown address and a wrong
    password) or EmailNotVerified (403)."""
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
    if user.is_staff:
        async with ctx.db.session() as session:
            if await second_factor.is_active(session, user.id):
                return CodeNeeded(second_factor.pending_token(secret, user.id))
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


async def attempt_second_factor(
    ctx: Context, pending: object, code: object, *, ip: str, device: str | None
) -> LoggedIn:
    """The session the pending token was for, given a TOTP or recovery code not used before;
    TooManyRequests (429) while the account or address is locked, Unauthenticated (401) for
    an expired token or a wrong code, which counts as a failed login."""
    secret = ctx.settings.session_secret
    found = second_factor.pending_account(secret, pending)
    spent_key = f"login:pending:{found[1]}" if found else ""
    if found is None or await ctx.limits.peek(spent_key, 1) > 0:
        raise Unauthenticated("error.login_step_expired")
    async with ctx.db.session() as session:
        user = await session.get(User, found[0])
    if user is None or not user.is_active or user.email is None:
        raise Unauthenticated("error.login_step_expired")
    account = throttle.account_key(secret, user.email)
    keys = throttle.login_keys(secret, account, ip, device)
    await throttle.check(ctx.limits, keys)
    async with ctx.db.session() as session:
        used = await second_factor.spend_code(session, ctx.settings.data_keys, user.id, code)
        if used is not None:
            token = await open_session(session, user)
            await audit.record(session, user, AuditAction.LOGIN, ip=ip, second_factor=used)
    if used is None:
        await throttle.count_failure(ctx.limits, keys)
        async with ctx.db.session() as session:
            await audit.record(
                session, None, AuditAction.SECOND_FACTOR_FAILED, ip=ip, target_user_id=user.id
            )
        raise second_factor.InvalidCode()
    await ctx.limits.hit(spent_key, 0, second_factor.PENDING_SECONDS)
    await throttle.succeeded(ctx.limits, account)
    return LoggedIn(user, token, throttle.device_cookie(secret, account))


async def _active_user(ctx: Context, email: str) -> User | None:
    normalized = normalize_email(email)
    if normalized is None:
        return None
    query = select(User).where(User.email == normalized, User.is_active.is_(True))
    async with ctx.db.session() as session:
        return (await session.execute(query)).scalar_one_or_none()
