"""Staff talking in a conversation: replies to the patient (on the conversation's channel or
another one linked to the patient), internal notes and whispers, and keeping a patient who
writes on a second channel with the person already serving them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.context import Context
from core.events import message_event
from handoff import facts
from handoff.transitions.common import (
    Event,
    NotWithPerson,
    TransitionError,
    check_may_act,
    give_to,
    lock_conversation,
    lock_episode,
    record_transition,
)
from handoff.transitions.queueing import distribute
from messaging import templates
from messaging.history import episode_elsewhere, open_conversation, record_outbound
from messaging.outbound import deliver
from messaging.windows import reply_identity, window
from models import (
    AuthorKind,
    ChannelIdentity,
    Conversation,
    HandoffKind,
    Message,
    Owner,
    User,
    utcnow,
)


class ChannelUnavailable(TransitionError):
    code = "error.channel_unavailable"


class ChannelBusy(TransitionError):
    code = "error.channel_busy"


class WindowClosed(TransitionError):
    """A typed reply on a channel whose messaging window is closed: only an approved template
    may go (WhatsApp), or nothing until the patient writes again (Messenger, Instagram)."""

    code = "error.window_closed"


async def reply(
    ctx: Context,
    conversation_id: int,
    actor: User,
    text: str,
    *,
    channel: str | None = None,
    template: tuple[int, list[str]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> Message:
    """A staff message to the patient: on the conversation's channel, or on another channel
    linked to the patient (into the patient's conversation there). Typed text goes only while
    the channel's messaging window lets a person write (`messaging.windows`); otherwise
    `template` (a registry template's id and the values of its variables) sends an approved
    template, recorded with its rendered text. `attachments` name files staff uploaded
    (`messaging.files.keep_upload`)."""
    linked_event = None
    async with ctx.db.session() as session:
        # The whole patient is locked: a reply on another channel locks that conversation too.
        conversation, _ = await lock_episode(session, conversation_id)
        check_may_act(conversation, actor)
        if conversation.owner != Owner.ATTENDANT:
            raise NotWithPerson()
        target = conversation
        if channel and channel != conversation.channel:
            target, linked_event = await _linked_conversation(
                ctx, session, conversation, channel, actor
            )
        identity = await session.get_one(ChannelIdentity, target.channel_identity_id)
        reach = window(ctx.senders, identity, AuthorKind.ATTENDANT)
        carried = None
        if template is not None:
            chosen = await templates.active_template(session, template[0], reach.templates)
            values = templates.checked_values(chosen, template[1])
            text, carried = (
                templates.render(chosen, values),
                templates.message_template(chosen, values),
            )
        elif not reach.free_text:
            raise WindowClosed(None if reach.templates else "error.window_closed_for_good")
        now = utcnow()
        for stamped in {conversation, target}:
            stamped.first_human_reply_at = stamped.first_human_reply_at or now
        # Recorded inside the lock, so the no-answer timer never requeues a conversation
        # whose reply is on its way.
        message = await record_outbound(
            session,
            target,
            text=text,
            author_kind=AuthorKind.ATTENDANT,
            author_id=actor.id,
            template=carried,
            attachments=attachments,
        )
        await facts.note_reply(session, message)
    if linked_event is not None:
        await ctx.bus.publish(linked_event)
    await ctx.bus.publish(message_event(message, target))
    await deliver(ctx, message, identity, target)
    return message


async def add_note(ctx: Context, conversation_id: int, actor: User, text: str) -> Message:
    """An internal note (by the attendant) or whisper (by a manager): staff see it in the
    timeline, the patient never does."""
    async with ctx.db.session() as session:
        conversation = await lock_conversation(session, conversation_id)
        check_may_act(conversation, actor)
        message = await record_outbound(
            session,
            conversation,
            text=text,
            author_kind=AuthorKind.ATTENDANT,
            author_id=actor.id,
            internal=True,
        )
    await ctx.bus.publish(message_event(message, conversation))
    return message


async def join_open_episode(ctx: Context, conversation_id: int) -> bool:
    """Before a patient's message goes to the bot: if the patient is already waiting for or
    talking to a person on another channel, this conversation joins that episode (same
    attendant, or the queue at the same place) and the bot stays out. True when it joined."""
    async with ctx.db.session() as session:
        conversation = await session.get_one(Conversation, conversation_id)
        # A cheap read first: almost every message to the bot has no such episode.
        if (
            conversation.owner != Owner.BOT
            or await episode_elsewhere(session, conversation) is None
        ):
            return False
    async with ctx.db.session() as session:
        conversation, _ = await lock_episode(session, conversation_id)
        episode = await episode_elsewhere(session, conversation)
        if conversation.owner != Owner.BOT or episode is None:
            return conversation.owner != Owner.BOT
        event = await _join(session, conversation, episode)
        waiting = episode.owner == Owner.QUEUED  # joined in the queue, not with a person
    await ctx.bus.publish(event)
    if waiting:
        await distribute(ctx)
    return True


# ---------------------------------------------------------------------------------------------
# The patient's other channels


async def _linked_conversation(
    ctx: Context, session: AsyncSession, source: Conversation, channel: str, actor: User
) -> tuple[Conversation, Event | None]:
    """The patient's open conversation on another channel, joined to the attendant who holds
    `source` (opened if needed), so the patient's answer there reaches the same person."""
    if channel not in ctx.senders:
        raise ChannelUnavailable()
    identity = await reply_identity(session, source.patient_id, channel)
    if identity is None:
        raise ChannelUnavailable()
    opened = await open_conversation(session, identity)
    target = await lock_conversation(session, opened.id)
    if target.owner == Owner.ATTENDANT:
        if target.assigned_attendant_id != source.assigned_attendant_id:
            raise ChannelBusy()
        return target, None
    return target, await _join(session, target, source, actor=actor)


async def _join(
    session: AsyncSession,
    conversation: Conversation,
    episode: Conversation,
    *,
    actor: User | None = None,
) -> Event:
    """Make `conversation` part of the patient's human `episode` on another channel: with the
    same person, or next to it in the queue."""
    now = utcnow()
    conversation.handed_off_at = conversation.handed_off_at or now
    conversation.handoff_reason = conversation.handoff_reason or episode.handoff_reason
    conversation.priority = max(conversation.priority, episode.priority)
    conversation.queued_at = conversation.queued_at or episode.queued_at or now
    holder = episode.assigned_attendant_id if episode.owner == Owner.ATTENDANT else None
    if holder is None:
        conversation.owner = Owner.QUEUED
    else:
        give_to(conversation, holder, now)
    return await record_transition(
        session,
        conversation,
        HandoffKind.LINKED,
        actor=actor,
        to_attendant_id=holder,
        from_conversation_id=episode.id,
    )
