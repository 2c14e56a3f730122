"""The conversations or appointments behind a figure, to read them one by one.

Lists only what the figure counted (ids, channels, times, who held it): no patient data, so
the list itself is not a read of anyone's history; opening a transcript is, and is audited
there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.analytics import appointments, service
from handoff.analytics.scope import Scope
from models import Appointment, Doctor, User

LIMIT = 500

CONVERSATION_FIGURES = (
    "handoffs",
    "unanswered",
    "sla_breaches",
    "resolved",
    "reopened",
    "csat",
    "reason",
)
APPOINTMENT_FIGURES = ("booked", "reschedules", "cancellations", "no_shows", "confirmed")
FIGURES = ("conversations", "contained", *CONVERSATION_FIGURES, *APPOINTMENT_FIGURES)


async def listing(
    session: AsyncSession, scope: Scope, figure: str, value: str | None = None
) -> dict[str, Any]:
    """The rows behind `figure` (one of FIGURES; `reason` takes the reason as `value`), the
    first LIMIT of them, newest first, and how many there are in all."""
    if figure in ("conversations", "contained"):
        return await _opened(session, scope, figure == "contained")
    if figure in CONVERSATION_FIGURES:
        return await _handoffs(session, scope, figure, value)
    if figure in APPOINTMENT_FIGURES:
        return await _appointments(session, scope, figure)
    raise ValueError(figure)


async def _count_and_rows(session: AsyncSession, query: Select[Any]) -> tuple[int, list[Any]]:
    rows = query.subquery()
    total = (await session.execute(select(func.count()).select_from(rows))).scalar_one()
    found = (await session.execute(select(rows).order_by(rows.c.at.desc()).limit(LIMIT))).all()
    return total, list(found)


async def _opened(session: AsyncSession, scope: Scope, contained: bool) -> dict[str, Any]:
    o = service.opened(scope)
    query = select(o.c.id, o.c.channel, o.c.at)
    if contained:
        query = query.where(o.c.contained == 1)
    total, rows = await _count_and_rows(session, query)
    return {
        "kind": "conversations",
        "total": total,
        "rows": [
            {"conversation_id": r.id, "channel": r.channel, "at": r.at.isoformat()} for r in rows
        ],
    }


def _handoff_condition(h: Any, figure: str, value: str | None) -> ColumnElement[bool] | None:
    conditions: dict[str, ColumnElement[bool] | None] = {
        "handoffs": None,
        "unanswered": h.c.unanswered == 1,
        "sla_breaches": h.c.breach == 1,
        "resolved": h.c.resolved == 1,
        "reopened": h.c.reopened == 1,
        "csat": h.c.csat.is_not(None),
        "reason": h.c.reason == (value or ""),
    }
    return conditions[figure]


async def _handoffs(
    session: AsyncSession, scope: Scope, figure: str, value: str | None
) -> dict[str, Any]:
    h = service.handoffs(scope).subquery()
    holder = User.__table__.alias("holder")
    query = select(
        h.c.id,
        h.c.channel,
        h.c.reason,
        h.c.handed_off_at.label("at"),
        h.c.frt,
        h.c.csat,
        h.c.resolved_at,
        holder.c.name.label("attendant"),
    ).outerjoin(holder, holder.c.id == func.coalesce(h.c.resolver_id, h.c.replier_id))
    condition = _handoff_condition(h, figure, value)
    if condition is not None:
        query = query.where(condition)
    total, rows = await _count_and_rows(session, query)
    return {
        "kind": "conversations",
        "total": total,
        "rows": [
            {
                "conversation_id": r.id,
                "channel": r.channel,
                "reason": r.reason,
                "at": r.at.isoformat(),
                "first_response_seconds": None if r.frt is None else round(float(r.frt)),
                "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None,
                "csat": r.csat,
                "attendant": r.attendant,
            }
            for r in rows
        ],
    }


async def _appointments(session: AsyncSession, scope: Scope, figure: str) -> dict[str, Any]:
    if figure in ("booked", "reschedules"):
        b = appointments.bookings(scope)
        ids = select(b.c.id, b.c.at, b.c.channel).where(
            b.c.reschedule == (1 if figure == "reschedules" else 0)
        )
    elif figure == "cancellations":
        c = appointments.cancellations(scope)
        ids = select(c.c.id, c.c.at, c.c.channel)
    else:
        v = appointments.visits(scope)
        column = v.c.no_show if figure == "no_shows" else v.c.confirmed
        ids = select(v.c.id, v.c.at, null().label("channel")).where(column == 1)
    picked = ids.subquery()
    query = (
        select(
            Appointment.id,
            picked.c.at,
            picked.c.channel,
            Appointment.starts_at,
            Appointment.status,
            Doctor.name.label("doctor"),
        )
        .join(picked, picked.c.id == Appointment.id)
        .join(Doctor, Doctor.id == Appointment.doctor_id)
    )
    total, rows = await _count_and_rows(session, query)
    return {
        "kind": "appointments",
        "total": total,
        "rows": [
            {
                "appointment_id": r.id,
                "at": r.at.isoformat(),
                "channel": r.channel,
                "starts_at": r.starts_at.isoformat(),
                "status": str(r.status),
                "doctor": r.doctor,
            }
            for r in rows
        ],
    }
