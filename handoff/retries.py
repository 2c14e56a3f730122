"""The worker's delivery retries: outbound messages still pending after a retryable failure
(429, 5xx, a network error) or after their process died before the first attempt are sent
again on the schedule of `handoff.outbound.RETRY_DELAYS`; the last failure is final and
shows on the staff screens as a failed message. Sealed messages (one-time codes) are never
retried."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.sql.expression import Exists

from handoff.context import Context
from handoff.events import message_event
from handoff.history import advance_delivery
from handoff.outbound import MAX_ATTEMPTS, RETRY_DELAYS, deliver
from models import (
    ChannelIdentity,
    Conversation,
    DeliveryStatus,
    Direction,
    Message,
    Reminder,
    utcnow,
)

log = logging.getLogger(__name__)

# A message never attempted is left alone this long: its own process may still be sending it.
NEVER_ATTEMPTED_GRACE = timedelta(seconds=60)
BATCH = 50
# A last attempt interrupted by a crash leaves its message pending; after this it is failed.
ABANDONED_AFTER = timedelta(seconds=sum(RETRY_DELAYS)) + timedelta(minutes=5)


def _owned_by_a_reminder() -> Exists:
    """Reminders deliver at most once and fall back to another channel on their own
    (scheduling/reminders.py): their messages are never retried here."""
    return exists().where(Reminder.message_id == Message.id)


def next_attempt_due(message: Message) -> timedelta:
    """How long after its creation the message's next attempt is due."""
    if message.attempts == 0:
        return NEVER_ATTEMPTED_GRACE
    return timedelta(seconds=sum(RETRY_DELAYS[: message.attempts]))


async def retry_due_deliveries(ctx: Context) -> int:
    """Attempt every pending outbound message whose retry is due; returns how many."""
    now = utcnow()
    async with ctx.db.session() as session:
        query = (
            select(Message, Conversation, ChannelIdentity)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(ChannelIdentity, ChannelIdentity.id == Conversation.channel_identity_id)
            .where(
                Message.direction == Direction.OUTBOUND,
                Message.internal.is_(False),
                Message.delivery_status == DeliveryStatus.PENDING,
                Message.attempts < MAX_ATTEMPTS,
                Message.sealed.is_(False),
                Message.created_at <= now - timedelta(seconds=RETRY_DELAYS[0]),
                ~_owned_by_a_reminder(),
            )
            .order_by(Message.id)
            .limit(BATCH)
        )
        rows = (await session.execute(query)).all()
    due = [row for row in rows if row.Message.created_at + next_attempt_due(row.Message) <= now]
    for message, conversation, identity in due:
        log.info("retrying delivery of message %s (attempt %s)", message.id, message.attempts + 1)
        await deliver(ctx, message, identity, conversation, retry_later=True)
    await _fail_abandoned(ctx, now)
    return len(due)


async def _fail_abandoned(ctx: Context, now: datetime) -> None:
    async with ctx.db.session() as session:
        query = (
            select(Message, Conversation)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Message.direction == Direction.OUTBOUND,
                Message.delivery_status == DeliveryStatus.PENDING,
                # A sealed message interrupted by a crash is never retried (what it carried
                # was only in memory): it is failed like an exhausted one.
                or_(Message.attempts >= MAX_ATTEMPTS, Message.sealed.is_(True)),
                Message.created_at <= now - ABANDONED_AFTER,
                ~_owned_by_a_reminder(),
            )
            .limit(BATCH)
        )
        rows = (await session.execute(query)).all()
        for message, _conversation in rows:
            advance_delivery(message, DeliveryStatus.FAILED)
            message.error = f"gave up after {message.attempts} attempts"
    for message, conversation in rows:
        await ctx.bus.publish(message_event(message, conversation))
