"""Every message to a patient (bot, attendant, system, reminder) leaves through here:
recorded first, pushed to staff screens, then delivered by the channel's Sender.

`deliver` is the one place every outbound message passes (first sends, retries, reminders,
bot replies), so it is where the providers' send-rate caps are kept: each send waits for a
slot on its lane (`Settings.send_rates`) in the shared `ctx.limits`, in Redis across every
process in production. (A Sender cannot: it has no context, and e-mail, the widget and the
console outbox send without `ProviderChannel.post`.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, inspect, update

from channels.base import ProviderChannel
from core.context import Context, DeliveryFailed, Reach
from core.events import message_event
from core.logs import log_failure, without_numbers
from messaging import templates
from messaging.files import with_links
from messaging.history import (
    advance_delivery,
    record_outbound,
    record_part,
    settle_delivery,
)
from messaging.windows import send_lane, window
from models import AuthorKind, ChannelIdentity, Conversation, DeliveryStatus, Message, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sealed:
    """What only the provider gets, never stored (a one-time code). The recorded message
    keeps the `text` given to `send`, which describes it for staff screens; the sealed
    content is attempted once, since after that it exists nowhere."""

    text: str
    template: dict[str, Any] | None = None

    def over(self, message: Message) -> Message:
        """A transient copy of the recorded message carrying the sealed content."""
        return _copy(message, text=self.text, template=self.template)


def _copy(message: Message, **changes: Any) -> Message:
    """A transient copy of a recorded message with `changes`, for its sender only."""
    values = {column.key: getattr(message, column.key) for column in inspect(Message).column_attrs}
    return Message(**{**values, **changes})


async def send(
    ctx: Context,
    conversation_id: int,
    *,
    text: str,
    author_kind: AuthorKind,
    author_id: int | None = None,
    buttons: list[dict[str, str]] | None = None,
    internal: bool = False,
    template: dict[str, Any] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    sealed: Sealed | None = None,
) -> Message:
    """`template` ({"name", "language", "parameters"}, or a `purpose` for the registry to
    fill in, `messaging.templates`) lets a channel that cannot send free text outside its
    messaging window send the approved template instead; `attachments` may
    carry generated files such as `{"kind": "ics", "filename", "content"}` for e-mail.
    With `sealed`, the provider gets its content instead of `text` and `template`, once:
    a failure is final (the returned row is the one recorded, before delivery)."""
    async with ctx.db.session() as session:
        conversation = await session.get_one(Conversation, conversation_id)
        message = await record_outbound(
            session,
            conversation,
            text=text,
            author_kind=author_kind,
            author_id=author_id,
            buttons=buttons,
            internal=internal,
            template=template,
            attachments=attachments,
            sealed=sealed is not None,
        )
        identity = await session.get_one(ChannelIdentity, conversation.channel_identity_id)
    await ctx.bus.publish(message_event(message, conversation))
    if not internal:
        outgoing = message if sealed is None else sealed.over(message)
        await deliver(ctx, outgoing, identity, conversation, retry_later=sealed is None)
    return message


# Retries after a retryable failure (429, 5xx, network), counted from the message's creation:
# attempt n+1 is due RETRY_DELAYS[:n] seconds later. After the last one the message fails.
RETRY_DELAYS = (5, 30, 120, 600, 1800)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


# A send reaches the provider a few milliseconds after its slot (the attempt's claim, the
# request): pacing this much under the cap leaves about 30 ms for that at any rate, so no
# one-second window at the provider holds more than the cap.
PACING_MARGIN = 0.03
# Bulk sends (reminders) first wait on a pace of their own at this share of the cap, then take
# the lane's next slot like any other send. However many workers send reminders, only those
# whose bulk slot has come queue on the lane: a patient's live reply waits a slot or two, not
# behind the whole batch, and keeps 5% of the lane for itself while reminders run. A process
# reserves its bulk slots this many at a time (one call to Redis per block, not per send).
BULK_SHARE = 0.95
BULK_BLOCK = 8


async def deliver(
    ctx: Context,
    message: Message,
    identity: ChannelIdentity,
    conversation: Conversation,
    *,
    retry_later: bool = False,
    claimed: bool = False,
    bulk: bool = False,
) -> bool:
    """One delivery attempt, as the channel's messaging window allows (`messaging.windows`:
    free text, a person's tagged reply, or only the message's approved template); True when
    the provider took the message.

    The send waits for its slot under the lane's rate cap (`bulk`: a reminder, paced at a
    share of it), then the attempt is claimed (compare-and-set on `attempts`; `claimed` when
    the message was recorded with its attempt taken), so two processes never send the same
    attempt, and a process stopped while waiting leaves the attempt untaken, to be sent
    again rather than given up as uncertain. With `retry_later`, a temporary failure (429,
    5xx, network) leaves the message pending for the worker's retries
    (`messaging/retries.py`); without it, as for reminders, which fall back to another
    channel instead, every failure is final."""
    sender = ctx.senders[message.channel]
    await _wait_for_slot(ctx, send_lane(sender, message.channel, identity), bulk=bulk)
    if not claimed and not await _claim_attempt(ctx, message):
        return False
    # What the channel's messaging window allows now (decided at each attempt: a retry may
    # find it closed, or re-opened by the patient).
    allowed = window(ctx.senders, identity, message.author_kind)
    if allowed.reach == Reach.TEMPLATE and allowed.templates and message.template:
        async with ctx.db.session() as session:
            resolved = await templates.resolve(session, message.template, allowed.templates)
        message = _copy(message, template=resolved)
    try:
        native = isinstance(sender, ProviderChannel) and sender.sends_files(identity)
        outgoing = with_links(ctx.settings, message, native=native)
        sent = await sender.deliver(outgoing, identity, allowed.reach)
    except DeliveryFailed as failure:
        await _record_failure(ctx, message, conversation, failure, retry_later)
        return False
    except Exception as exc:  # a Sender bug must not lose the message: retry, then fail
        log_failure(log, exc, "sender for %s crashed on message %s", message.channel, message.id)
        crash = DeliveryFailed(f"unexpected {type(exc).__name__}", retryable=True)
        await _record_failure(ctx, message, conversation, crash, retry_later)
        return False
    await _record_delivery(
        ctx, message.id, DeliveryStatus.SENT, conversation, parts=_provider_ids(sent)
    )
    return True


async def _wait_for_slot(ctx: Context, lane: str, *, bulk: bool) -> None:
    cap = ctx.settings.send_rates.get(lane)
    if not cap:
        return
    if bulk:
        bulk_wait = await ctx.limits.pace_in_blocks(
            f"send:{lane}:bulk", cap * BULK_SHARE, BULK_BLOCK
        )
        await asyncio.sleep(bulk_wait)
    await asyncio.sleep(await ctx.limits.pace(f"send:{lane}", cap * (1 - PACING_MARGIN)))


def _provider_ids(sent: str | Sequence[str] | None) -> list[str]:
    """A Sender returns the provider's one id, or the ids of the parts it sent."""
    if sent is None:
        return []
    return [sent] if isinstance(sent, str) else list(sent)


async def _claim_attempt(ctx: Context, message: Message) -> bool:
    async with ctx.db.session() as session:
        # An UPDATE's result is a CursorResult, which counts the rows it matched.
        result = cast(
            CursorResult[Any],
            await session.execute(
                update(Message)
                .where(Message.id == message.id, Message.attempts == message.attempts)
                # The error is cleared: an attempt that ends without recording its outcome (a
                # crash, a database failure after the provider took it) is told apart from a
                # failed one, and never repeated (messaging/retries.py).
                .values(attempts=message.attempts + 1, error=None)
                .execution_options(synchronize_session=False)
            ),
        )
    if result.rowcount != 1:
        return False
    message.attempts += 1
    return True


async def _record_failure(
    ctx: Context,
    message: Message,
    conversation: Conversation,
    failure: DeliveryFailed,
    retry_later: bool,
) -> None:
    final = not (retry_later and failure.retryable) or message.attempts >= MAX_ATTEMPTS
    log.warning(
        "delivery of message %s on %s failed (attempt %s%s): %s",
        message.id,
        message.channel,
        message.attempts,
        "" if final else ", will retry",
        without_numbers(failure.reason),
    )
    if final:
        await _record_delivery(
            ctx,
            message.id,
            DeliveryStatus.FAILED,
            conversation,
            parts=failure.accepted,
            error=failure.reason,
        )
        return
    async with ctx.db.session() as session:
        row = await session.get_one(Message, message.id)
        for provider_id in failure.accepted:
            await record_part(session, row, provider_id)
        row.error = failure.reason[:500]
        if failure.retry_after:
            row.retry_not_before = utcnow() + timedelta(seconds=failure.retry_after)
        await settle_delivery(session, row)
    await ctx.bus.publish(message_event(row, conversation))


async def _record_delivery(
    ctx: Context,
    message_id: int,
    status: DeliveryStatus,
    conversation: Conversation,
    *,
    parts: Sequence[str] = (),
    error: str | None = None,
) -> None:
    """Record the parts the provider took, the attempt's outcome, then any receipts that
    arrived for those parts before they were recorded (a failure reported at once)."""
    async with ctx.db.session() as session:
        message = await session.get_one(Message, message_id)
        receipts_came_first = False
        for provider_id in parts:
            receipts_came_first |= not await record_part(session, message, provider_id)
        changed = advance_delivery(message, status)
        if error:
            message.error = error[:500]
        elif changed and status == DeliveryStatus.SENT:
            message.error = None  # a retry succeeded
        if receipts_came_first:
            changed = await settle_delivery(session, message) or changed
    if changed:
        await ctx.bus.publish(message_event(message, conversation))
