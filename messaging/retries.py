"""The worker's delivery retries: outbound messages still pending after a retryable failure
(429, 5xx, a network error) or after their process died before the first attempt are sent
again on the schedule of `messaging.outbound.RETRY_DELAYS`; the last failure is final and
shows on the staff screens as a failed message. A provider that said how long to wait (a
429's retry_after) is not asked again before that. Sealed messages (one-time codes) are never
retried, and neither is an attempt that ended without recording its outcome (a crash, or a
database failure after the provider took the message): the patient may have it already, so it
is failed after a while instead of being sent twice. Delivery statuses that never found the
message they name are forgotten here too.

Every worker alive runs these retries: each attempt is claimed before it is sent
(`messaging.outbound.deliver`, a compare-and-set on `attempts`), so two workers never send
the same one, and a worker failing abandoned messages skips those another has locked."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.sql.expression import Exists

from core.context import Context
from core.events import message_event
from messaging.history import advance_delivery
from messaging.outbound import MAX_ATTEMPTS, RETRY_DELAYS, deliver
from models import (
    ChannelIdentity,
    Conversation,
    DeliveryStatus,
    Direction,
    Message,
    OutboundPart,
    Reminder,
    utcnow,
)

log = logging.getLogger(__name__)

# A message never attempted is left alone this long: its own process may still be sending it.
NEVER_ATTEMPTED_GRACE = timedelta(seconds=60)
BATCH = 50
# A last attempt interrupted by a crash leaves its message pending; after this it is failed.
ABANDONED_AFTER = timedelta(seconds=sum(RETRY_DELAYS)) + timedelta(minutes=5)
# A status kept for a provider id no send has claimed (it arrived before the send recorded
# the id) is matched within seconds; after this it names no message of ours.
UNCLAIMED_STATUS_TTL = timedelta(days=1)


def _owned_by_a_reminder() -> Exists:
    """Reminders deliver at most once and fall back to another channel on their own
    (scheduling/reminders.py): their messages are never retried here."""
    return exists().where(Reminder.message_id == Message.id)


def next_attempt_due(message: Message) -> timedelta:
    """How long after its creation the message's next attempt is due."""
    if message.attempts == 0:
        return NEVER_ATTEMPTED_GRACE
    return timedelta(seconds=sum(RETRY_DELAYS[: message.attempts]))


def is_due(message: Message, now: datetime) -> bool:
    """The schedule's turn has come, and whatever wait the provider asked for has passed."""
    waited = message.retry_not_before is None or message.retry_not_before <= now
    return waited and message.created_at + next_attempt_due(message) <= now


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
                # Never attempted, or the last attempt failed in a known way. One that ended
                # with no outcome recorded may have reached the patient: it is not repeated.
                or_(Message.attempts == 0, Message.error.is_not(None)),
                Message.created_at <= now - timedelta(seconds=RETRY_DELAYS[0]),
                ~_owned_by_a_reminder(),
            )
            .order_by(Message.id)
            .limit(BATCH)
        )
        rows = (await session.execute(query)).all()
    due = [row for row in rows if is_due(row.Message, now)]
    for message, conversation, identity in due:
        log.info("retrying delivery of message %s (attempt %s)", message.id, message.attempts + 1)
        await deliver(ctx, message, identity, conversation, retry_later=True)
    await _fail_abandoned(ctx, now)
    await _forget_unclaimed_statuses(ctx, now)
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
                # was only in memory), nor is an attempt whose outcome was never recorded:
                # they are failed like an exhausted one.
                or_(
                    Message.attempts >= MAX_ATTEMPTS,
                    Message.sealed.is_(True),
                    and_(Message.attempts > 0, Message.error.is_(None)),
                ),
                Message.created_at <= now - ABANDONED_AFTER,
                ~_owned_by_a_reminder(),
            )
            .limit(BATCH)
            .with_for_update(of=Message, skip_locked=True)
        )
        rows = (await session.execute(query)).all()
        for message, _conversation in rows:
            advance_delivery(message, DeliveryStatus.FAILED)
            message.error = (
                f"gave up after {message.attempts} attempts"
                if message.error or message.attempts >= MAX_ATTEMPTS
                else "the last attempt was interrupted; the patient may have received it"
            )
    for message, conversation in rows:
        await ctx.bus.publish(message_event(message, conversation))


async def _forget_unclaimed_statuses(ctx: Context, now: datetime) -> None:
    async with ctx.db.session() as session:
        await session.execute(
            delete(OutboundPart)
            .where(
                OutboundPart.message_id.is_(None),
                OutboundPart.created_at <= now - UNCLAIMED_STATUS_TTL,
            )
            .execution_options(synchronize_session=False)
        )
