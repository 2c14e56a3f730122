"""Appointment figures: bookings by origin and channel, cancellations, reschedules,
confirmations, no-shows and lead time, as SQL aggregates.

Origin comes from the booking's own record (`appointment_events` with no previous status):
booked through the portal, by staff on the agenda, or else by the assistant on the channel
the patient wrote from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Subquery,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.analytics.scope import Scope, bucket, distribution, durations, seconds_between, share
from models import Appointment, AppointmentEvent, AppointmentStatus

PORTAL = "portal"
STAFF = "staff"


def origin(channel: Any) -> ColumnElement[str]:
    return case((channel == PORTAL, "portal"), (channel == STAFF, "staff"), else_="bot")


def bookings(scope: Scope) -> Subquery:
    """Appointments booked in the period with their origin; a reschedule is the new
    appointment that replaced another."""
    period, filters = scope.period, scope.filters
    made = AppointmentEvent.__table__.alias("made")
    query = (
        select(
            Appointment.id,
            Appointment.created_at.label("at"),
            made.c.channel,
            origin(made.c.channel).label("origin"),
            cast(Appointment.rescheduled_from_id.is_not(None), Integer).label("reschedule"),
            seconds_between(scope, Appointment.starts_at, Appointment.created_at).label("lead"),
        )
        .join(made, and_(made.c.appointment_id == Appointment.id, made.c.from_status.is_(None)))
        .where(Appointment.created_at >= period.start, Appointment.created_at < period.end)
    )
    if filters.channel:
        query = query.where(made.c.channel == filters.channel)
    if filters.attendant_id is not None:
        query = query.where(made.c.actor_id == filters.attendant_id)
    return query.subquery("bookings")


def cancellations(scope: Scope) -> Subquery:
    """Cancellations recorded in the period, except those a reschedule made."""
    period, filters = scope.period, scope.filters
    replacement = Appointment.__table__.alias("replacement")
    query = select(
        AppointmentEvent.appointment_id.label("id"),
        AppointmentEvent.created_at.label("at"),
        AppointmentEvent.channel,
    ).where(
        AppointmentEvent.created_at >= period.start,
        AppointmentEvent.created_at < period.end,
        AppointmentEvent.to_status == AppointmentStatus.CANCELLED,
        ~exists().where(replacement.c.rescheduled_from_id == AppointmentEvent.appointment_id),
    )
    if filters.channel:
        query = query.where(AppointmentEvent.channel == filters.channel)
    if filters.attendant_id is not None:
        query = query.where(AppointmentEvent.actor_id == filters.attendant_id)
    return query.subquery("cancellations")


def visits(scope: Scope) -> Subquery:
    """Appointments whose time falls in the period (and is past), not cancelled: whether they
    were confirmed and whether the patient came."""
    period = scope.period
    confirmed = exists().where(
        AppointmentEvent.appointment_id == Appointment.id,
        AppointmentEvent.to_status == AppointmentStatus.CONFIRMED,
    )
    query = select(
        Appointment.id,
        Appointment.starts_at.label("at"),
        cast(confirmed, Integer).label("confirmed"),
        cast(Appointment.status == AppointmentStatus.NO_SHOW, Integer).label("no_show"),
        cast(
            Appointment.status.in_((AppointmentStatus.NO_SHOW, AppointmentStatus.DONE)), Integer
        ).label("settled"),
    ).where(
        Appointment.starts_at >= period.start,
        Appointment.starts_at < period.end,
        Appointment.status != AppointmentStatus.CANCELLED,
    )
    if scope.filters.channel or scope.filters.attendant_id is not None:
        query = query.where(_booked_as_filtered(scope))
    return query.subquery("visits")


def _booked_as_filtered(scope: Scope) -> ColumnElement[bool]:
    """The appointment was booked through the filtered channel, by the filtered attendant."""
    clauses = [
        AppointmentEvent.appointment_id == Appointment.id,
        AppointmentEvent.from_status.is_(None),
    ]
    if scope.filters.channel:
        clauses.append(AppointmentEvent.channel == scope.filters.channel)
    if scope.filters.attendant_id is not None:
        clauses.append(AppointmentEvent.actor_id == scope.filters.attendant_id)
    return exists().where(*clauses)


async def summary(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    b = bookings(scope)
    by_origin = [
        {"origin": row.origin, "channel": row.channel, "booked": row.n, "reschedules": row.r}
        for row in await session.execute(
            select(
                b.c.origin,
                b.c.channel,
                func.count().label("n"),
                func.sum(b.c.reschedule).label("r"),
            )
            .group_by(b.c.origin, b.c.channel)
            .order_by(b.c.origin, b.c.channel)
        )
    ]
    lead = (
        await session.execute(
            distribution(
                scope.dialect,
                select(literal("all", String).label("grp"), b.c.lead.label("v")).subquery(),
            )
        )
    ).first()
    cancelled = (
        await session.execute(select(func.count()).select_from(cancellations(scope)))
    ).scalar_one()
    v = visits(scope)
    seen = (
        await session.execute(
            select(
                func.count().label("visits"),
                func.coalesce(func.sum(v.c.confirmed), 0).label("confirmed"),
                func.coalesce(func.sum(v.c.no_show), 0).label("no_show"),
                func.coalesce(func.sum(v.c.settled), 0).label("settled"),
            )
        )
    ).one()
    reschedules = sum(int(row["reschedules"] or 0) for row in by_origin)
    booked = sum(row["booked"] for row in by_origin) - reschedules
    return {
        "booked": booked,
        "by_origin": [
            {
                **row,
                "booked": row["booked"] - int(row["reschedules"] or 0),
                "reschedules": int(row["reschedules"] or 0),
            }
            for row in by_origin
        ],
        "reschedules": reschedules,
        "cancellations": cancelled,
        "visits": seen.visits,
        "confirmed": seen.confirmed,
        "confirmation_rate": share(seen.confirmed, seen.visits),
        "no_shows": seen.no_show,
        "no_show_rate": share(seen.no_show, seen.settled),
        "lead_time": durations(lead),
    }


async def series(session: AsyncSession, scope: Scope) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    b = bookings(scope)
    day = bucket(scope, b.c.at)
    for row in await session.execute(
        select(day, func.count(), func.sum(b.c.reschedule)).group_by(day)
    ):
        found.setdefault("booked", {})[row[0]] = row[1] - int(row[2] or 0)
        found.setdefault("reschedules", {})[row[0]] = int(row[2] or 0)
    c = cancellations(scope)
    day = bucket(scope, c.c.at)
    for key, n in await session.execute(select(day, func.count()).group_by(day)):
        found.setdefault("cancellations", {})[key] = n
    v = visits(scope)
    day = bucket(scope, v.c.at)
    for key, n in await session.execute(select(day, func.sum(v.c.no_show)).group_by(day)):
        found.setdefault("no_shows", {})[key] = int(n or 0)
    return found
