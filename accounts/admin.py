"""What only the clinic's admin may change: staff accounts and the clinic profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from accounts import throttle
from accounts.auth import close_sessions, new_password_hash
from core import audit
from core.audit import AuditAction
from core.contacts import normalize_email
from core.context import Context
from core.errors import BadRequest
from handoff import presence
from handoff.transitions import queueing
from models import AttendantProfile, ClinicProfile, Presence, Role, User, utcnow
from models.db import Database

MIN_PASSWORD_LENGTH = 8
ADMIN_MIN_PASSWORD_LENGTH = 12
STAFF_ROLES_ADMIN_CAN_GRANT = (Role.ATTENDANT, Role.MANAGER, Role.ADMIN)


class AdminError(BadRequest):
    """Invalid input (400); `code` is a catalog key."""


class EmailTaken(AdminError):
    code = "error.email_taken"
    status = 409


class AdminExists(AdminError):
    code = "error.admin_exists"
    status = 409


class AdminNotFound(AdminError):
    """No such staff account, or no clinic profile yet (404)."""

    code = "error.not_found"
    status = 404


@dataclass(frozen=True)
class StaffChanges:
    name: str | None = None
    role: Role | None = None
    capacity: int | None = None
    is_active: bool | None = None
    password: str | None = None


def _check_password(password: Any) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AdminError("error.password_too_short", minimum=MIN_PASSWORD_LENGTH)
    return password


def _check_role(role: Any) -> Role:
    try:
        parsed = Role(role)
    except ValueError:
        raise AdminError("error.invalid_role") from None
    if parsed not in STAFF_ROLES_ADMIN_CAN_GRANT:
        raise AdminError("error.invalid_role")
    return parsed


def _check_capacity(capacity: Any) -> int:
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= 50:
        raise AdminError("error.invalid_capacity")
    return capacity


async def list_staff(db: Database) -> list[User]:
    query = (
        select(User)
        .where(User.role.in_(STAFF_ROLES_ADMIN_CAN_GRANT))
        .options(selectinload(User.attendant_profile))
        .order_by(User.name)
    )
    async with db.session() as session:
        return list((await session.execute(query)).scalars().all())


async def create_staff(
    db: Database,
    admin: User,
    *,
    name: str,
    email: str,
    role: Any,
    password: str,
    capacity: int = 5,
    ip: str | None = None,
) -> User:
    password_hash = await new_password_hash(_check_password(password))
    user = _new_staff(name, email, _check_role(role), password_hash, capacity)
    try:
        async with db.session() as session:
            session.add(user)
            await session.flush()
            await audit.record(
                session,
                admin,
                AuditAction.STAFF_CREATED,
                ip=ip,
                target_user_id=user.id,
                role=str(user.role),
            )
    except IntegrityError:
        raise EmailTaken() from None
    return user


async def create_first_admin(
    db: Database, *, name: str, email: str, password: str, allow_another: bool = False
) -> User:
    """A real clinic's first admin (`make admin`), who then creates the team at /staff/admin.
    Refused when the clinic already has an active admin, unless `allow_another` (a lost
    password with nobody left to reset it); the account audits its own creation."""
    password_hash = await new_password_hash(check_admin_password(password, email))
    user = _new_staff(name, email, Role.ADMIN, password_hash, 0)
    try:
        async with db.session() as session:
            active_admins = await session.scalar(
                select(func.count(User.id)).where(User.role == Role.ADMIN, User.is_active)
            )
            if active_admins and not allow_another:
                raise AdminExists()
            session.add(user)
            await session.flush()
            await audit.record(session, user, AuditAction.STAFF_CREATED, target_user_id=user.id)
    except IntegrityError:
        raise EmailTaken() from None
    return user


def check_admin_password(password: str, email: str) -> str:
    """An admin account holds every key: a longer password than other accounts', and not
    built from the e-mail it logs in with."""
    if len(password) < ADMIN_MIN_PASSWORD_LENGTH:
        raise AdminError("error.password_too_short", minimum=ADMIN_MIN_PASSWORD_LENGTH)
    login = email.partition("@")[0].strip().lower()
    if len(set(password)) < 5 or (len(login) >= 3 and login in password.lower()):
        raise AdminError("error.password_weak")
    return password


def _new_staff(name: str, email: str, role: Role, password_hash: str, capacity: int) -> User:
    normalized = normalize_email(email)
    if not name.strip() or normalized is None:
        raise AdminError("error.invalid_staff")
    user = User(
        name=name.strip(),
        email=normalized,
        role=role,
        password_hash=password_hash,
        email_verified_at=utcnow(),  # the admin vouches for the address
    )
    if role in (Role.ATTENDANT, Role.MANAGER):
        user.attendant_profile = AttendantProfile(capacity=_check_capacity(capacity))
    return user


async def update_staff(
    ctx: Context, admin: User, user_id: int, changes: StaffChanges, *, ip: str | None = None
) -> User:
    """Change a staff account; the conversations follow at once: a deactivated attendant's go
    back to the queue ahead of newer ones (as when going offline), and more room (a higher
    capacity, a reactivation) is filled from the queue."""
    password_hash = None
    if changes.password is not None:
        password_hash = await new_password_hash(_check_password(changes.password))
    async with ctx.db.session() as session:
        query = (
            select(User)
            .where(User.id == user_id, User.role.in_(STAFF_ROLES_ADMIN_CAN_GRANT))
            .options(selectinload(User.attendant_profile))
            .with_for_update()
        )
        user = (await session.execute(query)).scalar_one_or_none()
        if user is None:
            raise AdminNotFound()
        was_active, role = user.is_active, user.role
        capacity = user.attendant_profile.capacity if user.attendant_profile else 0
        if changes.name is not None:
            if not isinstance(changes.name, str):
                raise AdminError("error.invalid_staff")
            user.name = changes.name.strip() or user.name
        if changes.role is not None:
            user.role = _check_role(changes.role)
            if user.role != Role.ADMIN and user.attendant_profile is None:
                user.attendant_profile = AttendantProfile()
        if changes.capacity is not None and user.attendant_profile is not None:
            user.attendant_profile.capacity = _check_capacity(changes.capacity)
        if password_hash is not None:
            user.password_hash = password_hash
        if changes.is_active is not None:
            if not isinstance(changes.is_active, bool):
                raise AdminError("error.invalid_staff")
            if user.id == admin.id and not changes.is_active:
                raise AdminError("error.cannot_deactivate_self")
            user.is_active = changes.is_active
        if changes.password is not None or changes.is_active is False:
            # A new password or a deactivation ends every open session of that account.
            await close_sessions(session, user.id)
        await audit.record(
            session,
            admin,
            AuditAction.STAFF_UPDATED,
            ip=ip,
            target_user_id=user.id,
            fields=_changed(changes),
            **({"is_active": changes.is_active} if changes.is_active is not None else {}),
        )
    if user.attendant_profile is None:
        return user
    if was_active and not user.is_active:
        await presence.set_presence(ctx, user, Presence.OFFLINE, reason="deactivated")
    elif user.is_active and (
        not was_active or user.role != role or user.attendant_profile.capacity > capacity
    ):
        await queueing.distribute(ctx)
    return user


async def _staff_member(db: Database, user_id: int) -> User:
    async with db.session() as session:
        user = await session.get(User, user_id)
    if user is None or user.role not in STAFF_ROLES_ADMIN_CAN_GRANT:
        raise AdminNotFound()
    return user


async def login_locks(ctx: Context, staff: list[User]) -> dict[int, float]:
    """The seconds each locked staff account stays locked (accounts/throttle.py)."""
    secret = ctx.settings.session_secret
    locks = {
        user.id: await throttle.locked_for(ctx.limits, throttle.account_key(secret, user.email))
        for user in staff
        if user.email
    }
    return {user_id: wait for user_id, wait in locks.items() if wait > 0}


async def lift_login_lock(ctx: Context, admin: User, user_id: int, *, ip: str | None) -> User:
    """Unlock a staff account locked by failed logins (its owner called the admin)."""
    user = await _staff_member(ctx.db, user_id)
    account = throttle.account_key(ctx.settings.session_secret, user.email or "")
    await throttle.lift(ctx.limits, account)
    async with ctx.db.session() as session:
        await audit.record(session, admin, AuditAction.LOCK_LIFTED, ip=ip, target_user_id=user.id)
    return user


def _changed(changes: StaffChanges) -> list[str]:
    return [field for field, value in vars(changes).items() if value is not None]


def clean_profile(data: Any) -> dict[str, Any]:
    """Every field is a text, a list of texts or a map of texts (e.g. exam → preparation);
    anything else is refused rather than stored for the assistant to trip on."""
    if not isinstance(data, dict):
        raise AdminError("error.invalid_profile")
    return {str(key): _clean_value(value) for key, value in data.items()}


def _clean_value(value: Any) -> str | list[str] | dict[str, str]:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return {k.strip(): v.strip() for k, v in value.items() if k.strip()}
    raise AdminError("error.invalid_profile")


async def clinic_profile(db: Database) -> ClinicProfile:
    async with db.session() as session:
        profile = (await session.execute(select(ClinicProfile).limit(1))).scalar_one_or_none()
    if profile is None:
        raise AdminNotFound()
    return profile


async def update_clinic_profile(
    db: Database, admin: User, *, name: object, data: object, ip: str | None = None
) -> ClinicProfile:
    """Replace the clinic profile, as typed in the admin's form (anything else is refused)."""
    cleaned = clean_profile(data)
    if not isinstance(name, str) or not name.strip():
        raise AdminError("error.invalid_profile")
    async with db.session() as session:
        profile = (
            await session.execute(select(ClinicProfile).limit(1).with_for_update())
        ).scalar_one_or_none()
        if profile is None:
            profile = ClinicProfile()
            session.add(profile)
        profile.name = name.strip()
        profile.data = cleaned
        await audit.record(
            session, admin, AuditAction.CLINIC_PROFILE_UPDATED, ip=ip, fields=sorted(cleaned)
        )
    return profile
