"""The manager's analytics console: service, appointment, reminder and live figures over a
period, their series per day (or hour) against the previous period, and the rows behind each
figure. Read-only, and every figure is an SQL aggregate over indexed columns: no rows are
looped in Python, whatever the period."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.analytics import appointments, live, reminders, service
from handoff.analytics.scope import (
    DEFAULT_SLA_MINUTES,
    MAX_SLA_MINUTES,
    Filters,
    Period,
    Scope,
    without_jit,
)

__all__ = [
    "DEFAULT_SLA_MINUTES",
    "MAX_SLA_MINUTES",
    "Filters",
    "Period",
    "Scope",
    "report",
    "series",
]


async def report(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    """Every figure of the period (the previous period's come with the series)."""
    await without_jit(session, scope)
    async with service.materialized(session, scope) as handoffs:
        figures = {
            "service": await service.summary(session, scope, handoffs),
            "attendants": await service.per_attendant(session, handoffs),
            "channels": await service.per_channel(session, scope, handoffs),
        }
    return {
        "period": scope.period.describe(),
        "filters": scope.filters.describe(),
        **figures,
        "appointments": await appointments.summary(session, scope),
        "reminders": await reminders.summary(session, scope),
        "live": await live.now_figures(session, scope.now),
    }


async def series(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    """Each series per bucket for the period and for the previous one, aligned by position
    (the first day against the first day)."""
    await without_jit(session, scope)
    previous = scope.of(scope.period.previous())
    current_values = await _all_series(session, scope)
    previous_values = await _all_series(session, previous)
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


async def _all_series(session: AsyncSession, scope: Scope) -> dict[str, dict[str, float]]:
    async with service.materialized(session, scope) as handoffs:
        served = await service.series(session, scope, handoffs)
    return {
        **served,
        **await appointments.series(session, scope),
        **await reminders.series(session, scope),
    }
