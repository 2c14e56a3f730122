"""Reminder figures by channel: sent, delivered, read, failed, and the replies to them that
confirmed or cancelled the appointment, as SQL aggregates.

The cohort is the reminders due in the period. Delivery comes from the reminder's message
(what the provider reported); a reply is a confirmation or cancellation recorded through the
reminder's channel after it was sent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, Subquery, and_, cast, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.analytics.scope import Scope, bucket
from models import (
    AppointmentEvent,
    AppointmentStatus,
    DeliveryStatus,
    Message,
    Reminder,
    ReminderKind,
    ReminderStatus,
)

FIGURES = ("sent", "delivered", "read", "failed", "confirmed", "cancelled")


def _replied(status: AppointmentStatus) -> Any:
    return exists().where(
        AppointmentEvent.appointment_id == Reminder.appointment_id,
        AppointmentEvent.channel == Reminder.channel,
        AppointmentEvent.to_status == status,
        AppointmentEvent.created_at >= Reminder.sent_at,
    )


def reminders(scope: Scope) -> Subquery:
    period = scope.period
    sent = Reminder.status == ReminderStatus.SENT
    failed = (Reminder.status == ReminderStatus.FAILED) | (
        Message.delivery_status == DeliveryStatus.FAILED
    )
    reached = Message.delivery_status.in_((DeliveryStatus.DELIVERED, DeliveryStatus.READ))
    query = (
        select(
            Reminder.id,
            Reminder.due_at.label("at"),
            func.coalesce(Reminder.channel, "").label("channel"),
            cast(sent, Integer).label("sent"),
            cast(and_(sent, reached), Integer).label("delivered"),
            cast(and_(sent, Message.delivery_status == DeliveryStatus.READ), Integer).label("read"),
            cast(failed, Integer).label("failed"),
            cast(and_(sent, _replied(AppointmentStatus.CONFIRMED)), Integer).label("confirmed"),
            cast(and_(sent, _replied(AppointmentStatus.CANCELLED)), Integer).label("cancelled"),
        )
        .outerjoin(Message, Message.id == Reminder.message_id)
        .where(
            Reminder.kind == ReminderKind.REMINDER,
            Reminder.due_at >= period.start,
            Reminder.due_at < period.end,
        )
    )
    if scope.filters.channel:
        query = query.where(Reminder.channel == scope.filters.channel)
    if scope.filters.attendant_id is not None:
        query = query.where(Reminder.requested_by_id == scope.filters.attendant_id)
    return query.subquery("reminders")


async def summary(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    r = reminders(scope)
    sums = [func.coalesce(func.sum(r.c[name]), 0).label(name) for name in FIGURES]
    query = select(r.c.channel, *sums).group_by(r.c.channel).order_by(r.c.channel)
    by_channel = [
        {"channel": row.channel, **{name: int(row._mapping[name]) for name in FIGURES}}
        for row in await session.execute(query)
    ]
    # The totals add up the handful of per-channel rows rather than scan the reminders twice.
    return {
        **{name: sum(row[name] for row in by_channel) for name in FIGURES},
        "by_channel": by_channel,
    }


async def series(session: AsyncSession, scope: Scope) -> dict[str, dict[str, float]]:
    r = reminders(scope)
    day = bucket(scope, r.c.at)
    found: dict[str, dict[str, float]] = {}
    query = select(
        day.label("b"),
        func.sum(r.c.sent).label("reminders_sent"),
        func.sum(r.c.failed).label("reminders_failed"),
    ).group_by(day)
    for row in await session.execute(query):
        found.setdefault("reminders_sent", {})[row.b] = int(row.reminders_sent or 0)
        found.setdefault("reminders_failed", {})[row.b] = int(row.reminders_failed or 0)
    return found
