"""The manager's analytics console: service, appointment, reminder and live figures over a
period, their series per day (or hour) against the previous period, and the rows behind each
figure. Read-only, and every figure is an SQL aggregate over indexed columns: no rows are
looped in Python, whatever the period."""

from __future__ import annotations

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


async def console(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    """What the console shows on loading: every figure and every series, computed from one
    materialization of the period's handoffs in one transaction."""
    await tuned(session, scope)
    async with service.materialized(session, scope) as handoffs:
        figures = await _figures(session, scope, handoffs)
        current = await _all_series(session, scope, handoffs)
    return {"report": figures, "series": await _series(session, scope, current)}


async def report(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    """Every figure of the period (the previous period's come with the series)."""
    await tuned(session, scope)
    async with service.materialized(session, scope) as handoffs:
        return await _figures(session, scope, handoffs)


async def series(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    """Each series per bucket for the period and for the previous one, aligned by position
    (the first day against the first day)."""
    await tuned(session, scope)
    current = await _all_series(session, scope, service.handoffs(scope).subquery("h"))
    return await _series(session, scope, current)


async def _figures(session: AsyncSession, scope: Scope, handoffs: FromClause) -> dict[str, Any]:
    return {
        "period": scope.period.describe(),
        "filters": scope.filters.describe(),
        "service": await service.summary(session, scope, handoffs),
        "attendants": await service.per_attendant(session, handoffs),
        "channels": await service.per_channel(session, scope, handoffs),
        "appointments": await appointments.summary(session, scope),
        "reminders": await reminders.summary(session, scope),
        "live": await live.now_figures(session, scope.now),
    }


async def _series(
    session: AsyncSession, scope: Scope, current_values: dict[str, dict[str, float]]
) -> dict[str, Any]:
    # The previous period's handoffs feed one aggregate each: read in place, not materialized.
    previous = scope.of(scope.period.previous())
    previous_values = await _all_series(session, previous, service.handoffs(previous).subquery("h"))
    buckets, earlier = scope.period.buckets(), previous.period.buckets()
    names = sorted(set(current_values) | set(previous_values) | set(SERIES_ZERO))
    return {
        "period": scope.period.describe(),
        "previous_period": previous.period.describe(),
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


async def _all_series(
    session: AsyncSession, scope: Scope, handoffs: FromClause
) -> dict[str, dict[str, float]]:
    return {
        **await service.series(session, scope, handoffs),
        **await appointments.series(session, scope),
        **await reminders.series(session, scope),
    }
