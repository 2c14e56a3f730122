"""Rows the tests need, created through the same code paths the product uses."""

from __future__ import annotations

import itertools

from handoff.auth import hash_password
from handoff.history import Inbound, record_inbound
from models import AttendantProfile, Presence, Role, User
from models.db import Database

_counter = itertools.count(1)


async def staff(
    db: Database,
    role: Role = Role.ATTENDANT,
    *,
    presence: Presence = Presence.ONLINE,
    capacity: int = 5,
    password: str = "senha-segura",
) -> User:
    n = next(_counter)
    async with db.session() as session:
        user = User(
            name=f"Atendente {n}",
            email=f"staff{n}@clinica.test",
            role=role,
            password_hash=hash_password(password),
        )
        if role in (Role.ATTENDANT, Role.MANAGER):
            user.attendant_profile = AttendantProfile(presence=presence, capacity=capacity)
        session.add(user)
    return user


async def patient_message(
    db: Database, text: str = "oi", *, channel: str = "webchat", user: str | None = None, **fields
):
    """Record one inbound message as a connector would; returns the Recorded."""
    n = next(_counter)
    inbound = Inbound(
        channel=channel,
        external_user_id=user or f"visitor-{n}",
        provider_message_id=fields.pop("provider_message_id", f"msg-{n}"),
        text=text,
        **fields,
    )
    async with db.session() as session:
        return await record_inbound(session, inbound)


def valid_cpf(n: int) -> str:
    """A CPF with correct check digits, different for each n."""
    digits = [int(d) for d in f"{(n * 7919 + 100_000_000) % 1_000_000_000:09d}"]
    for position in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(position + 1, 1, -1), strict=True))
        digits.append(total * 10 % 11 % 10)
    return "".join(map(str, digits))
