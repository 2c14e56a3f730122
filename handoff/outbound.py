"""Every message to a patient (bot, attendant, system, reminder) leaves through here:
recorded first, pushed to staff screens, then delivered by the channel's Sender."""

from __future__ import annotations

import logging
from typing import Any

from handoff.context import Context, DeliveryFailed
from handoff.events import message_event
from handoff.history import advance_delivery, latest_conversation, record_outbound
from models import AuthorKind, ChannelIdentity, Conversation, DeliveryStatus, Message

log = logging.getLogger(__name__)


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
) -> Message:
    """`template` ({"name", "language", "parameters"}) lets a channel that cannot send free
    text outside its messaging window send the approved template instead; `attachments` may
    carry generated files such as `{"kind": "ics", "filename", "content"}` for e-mail."""
    async with ctx.db.session() as session:
        conversation = await session.get(Conversation, conversation_id)
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
        )
        identity = await session.get(ChannelIdentity, conversation.channel_identity_id)
    await ctx.bus.publish(message_event(message, conversation))
    if not internal:
        await deliver(ctx, message, identity, conversation)
    return message


async def send_bot_reply(
    ctx: Context, patient_id: int, channel: str, text: str, buttons: list[dict[str, str]]
) -> Message | None:
    async with ctx.db.session() as session:
        conversation = await latest_conversation(session, patient_id, channel)
    if conversation is None:
        log.warning("bot reply for patient %s has no conversation on %s", patient_id, channel)
        return None
    return await send(ctx, conversation.id, text=text, author_kind=AuthorKind.BOT, buttons=buttons)


async def deliver(
    ctx: Context, message: Message, identity: ChannelIdentity, conversation: Conversation
) -> bool:
    """Hand a recorded message to its channel's Sender; True when the provider took it."""
    sender = ctx.senders[message.channel]
    try:
        provider_id = await sender.deliver(message, identity)
    except DeliveryFailed as failure:
        log.warning(
            "delivery of message %s on %s failed: %s", message.id, message.channel, failure.reason
        )
        await _record_delivery(
            ctx, message.id, DeliveryStatus.FAILED, conversation, error=failure.reason
        )
        return False
    await _record_delivery(
        ctx, message.id, DeliveryStatus.SENT, conversation, provider_id=provider_id
    )
    return True


async def _record_delivery(
    ctx: Context,
    message_id: int,
    status: DeliveryStatus,
    conversation: Conversation,
    *,
    provider_id: str | None = None,
    error: str | None = None,
) -> None:
    async with ctx.db.session() as session:
        message = await session.get(Message, message_id)
        message.attempts += 1
        if provider_id:
            message.provider_message_id = provider_id
        if error:
            message.error = error[:500]
        changed = advance_delivery(message, status)
    if changed:
        await ctx.bus.publish(message_event(message, conversation))
