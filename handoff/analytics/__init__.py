"""The manager's analytics console: service, appointment, reminder and live figures over a
period, their series per day (or hour) against the previous period, and the rows behind each
figure. Read-only, and every figure is an SQL aggregate over indexed columns: no rows are
looped in Python, whatever the period."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import FromClause
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.analytics import appointments, live, reminders, service
from handoff.analytics.scope import (
    DEFAULT_SLA_MINUTES,
    MAX_SLA_MINUTES,
    Filters,
    Period,
    Scope,
    tuned,
)
from models.db import Database

__all__ = [
    "DEFAULT_SLA_MINUTES",
    "MAX_SLA_MINUTES",
    "Filters",
    "Period",
    "Scope",
    "console",
    "report",
    "series",
]


Values = dict[str, dict[str, float]]


async def console(db: Database, scope: Scope) -> dict[str, Any]:
    """What the console shows on loading: every figure and every series of the period and the
    previous one, in two transactions on connections of their own, at the same time: the
    period's handoffs (materialized once, then every service figure and series aggregates
    them), and what is read in place (appointments, reminders, live figures and the previous
    period's series) — about the same work each for a month."""
    previous = scope.of(scope.period.previous())

    async def handed_off() -> tuple[dict[str, Any], Values]:
        async with db.session() as session:
            await tuned(session, scope)
            async with service.materialized(session, scope) as handoffs:
                figures = await _service_figures(session, scope, handoffs)
                return figures, await service.series(session, scope, handoffs)

    async def in_place() -> tuple[dict[str, Any], Values, Values]:
        async with db.session() as session:
            await tuned(session, scope)
            figures = await _booking_figures(session, scope)
            current = await _booking_series(session, scope)
            before = {
                **await _service_series(session, previous),
                **await _booking_series(session, previous),
            }
            return figures, current, before

    async with asyncio.TaskGroup() as group:
        served = group.create_task(handed_off())
        read = group.create_task(in_place())
    service_figures, service_now = served.result()
    booking_figures, booking_now, before = read.result()
    return {
        "report": _report(scope, service_figures, booking_figures),
        "series": _series(scope, {**service_now, **booking_now}, before),
    }


async def report(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    """Every figure of the period (the previous period's come with the series)."""
    await tuned(session, scope)
    async with service.materialized(session, scope) as handoffs:
        served = await _service_figures(session, scope, handoffs)
    return _report(scope, served, await _booking_figures(session, scope))


async def series(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    """Each series per bucket for the period and for the previous one, aligned by position
    (the first day against the first day)."""
    await tuned(session, scope)
    values = [
        {**await _service_series(session, s), **await _booking_series(session, s)}
        for s in (scope, scope.of(scope.period.previous()))
    ]
    return _series(scope, *values)


async def _service_figures(
    session: AsyncSession, scope: Scope, handoffs: FromClause
) -> dict[str, Any]:
    return {
        "service": await service.summary(session, scope, handoffs),
        "attendants": await service.per_attendant(session, handoffs),
        "channels": await service.per_channel(session, scope, handoffs),
    }


async def _booking_figures(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    return {
        "appointments": await appointments.summary(session, scope),
        "reminders": await reminders.summary(session, scope),
        "live": await live.now_figures(session, scope.now),
    }


async def _service_series(session: AsyncSession, scope: Scope) -> Values:
    # Each series is one aggregate over the handoffs: read in place, not materialized.
    return await service.series(session, scope, service.handoffs(scope).subquery("h"))


async def _booking_series(session: AsyncSession, scope: Scope) -> Values:
    return {
        **await appointments.series(session, scope),
        **await reminders.series(session, scope),
    }


def _report(scope: Scope, served: dict[str, Any], booked: dict[str, Any]) -> dict[str, Any]:
    return {
        "period": scope.period.describe(),
        "filters": scope.filters.describe(),
        **served,
        **booked,
    }


def _series(scope: Scope, current_values: Values, previous_values: Values) -> dict[str, Any]:
    previous = scope.period.previous()
    buckets, earlier = scope.period.buckets(), previous.buckets()
    names = sorted(set(current_values) | set(previous_values) | set(SERIES_ZERO))
    return {
        "period": scope.period.describe(),
        "previous_period": previous.describe(),
        "granularity": "hour" if scope.period.hourly else "day",
        "buckets": buckets,
        "previous_buckets": earlier,
        "series": {
            name: {
                "current": [_point(current_values, name, b) for b in buckets],
                "previous": [_point(previous_values, name, b) for b in earlier],
            }
            for name in names
        },
    }


# Counts are 0 on a bucket with nothing; means have no value there.
SERIES_ZERO = (
    "conversations",
    "contained",
    "handoffs",
    "sla_breaches",
    "resolved",
    "reopened",
    "booked",
    "reschedules",
    "cancellations",
    "no_shows",
    "reminders_sent",
    "reminders_failed",
)


def _point(values: dict[str, dict[str, float]], name: str, key: str) -> float | None:
    found = values.get(name, {}).get(key)
    if found is None and name in SERIES_ZERO:
        return 0
    return found
