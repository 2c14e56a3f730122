"""Moving a patient's episode between people and the queue: taking it from the queue by hand,
transfers, a manager's reassign, take-over and priority, and sending it back to the queue."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import access
from core.catalog import t
from core.context import Context
from core.errors import Forbidden
from handoff.transitions.common import (
    AttendantUnavailable,
    ConversationClosed,
    Event,
    NotOwner,
    NotWithPerson,
    StaffOnly,
    TransitionError,
    check_manager,
    check_may_act,
    give_to,
    lock_conversation,
    lock_episode,
    lock_receiver,
    publish,
    record_transition,
)
from handoff.transitions.queueing import distribute, tell_queue_position
from messaging.outbound import send
from models import (
    AuthorKind,
    Conversation,
    ConversationStatus,
    HandoffKind,
    Message,
    Owner,
    Presence,
    Priority,
    User,
    utcnow,
)

log = logging.getLogger(__name__)


class NotQueued(TransitionError):
    code = "error.not_queued"


class ManualTakeDisabled(TransitionError, Forbidden):
    code = "error.manual_take_disabled"


async def take(ctx: Context, conversation_id: int, actor: User) -> Conversation:
    """Take a conversation (with the rest of its patient's episode) from the queue by hand
    (attendants only when MANUAL_TAKE allows, and within their capacity)."""
    async with ctx.db.session() as session:
        conversation, episode = await lock_episode(session, conversation_id)
        if access.is_attendant(actor) and not access.may_take_from_queue(actor, conversation):
            raise NotOwner()
        if conversation.status != ConversationStatus.OPEN or conversation.owner != Owner.QUEUED:
            raise NotQueued()
        if any(m.owner == Owner.ATTENDANT and m.assigned_attendant_id != actor.id for m in episode):
            # A colleague serves the patient on another channel: distribution joins this
            # conversation to them rather than split the patient.
            raise NotQueued()
        if access.is_attendant(actor) and not ctx.settings.manual_take:
            raise ManualTakeDisabled()
        if not access.may_take_from_queue(actor, conversation):
            raise StaffOnly()
        receiver = await lock_receiver(
            session,
            actor.id,
            conversation.patient_id,
            presences=(Presence.ONLINE, Presence.PAUSED),
        )
        events = await _move_episode(session, episode, HandoffKind.TAKEN, receiver, actor=actor)
    await publish(ctx, events)
    await send(
        ctx,
        conversation_id,
        text=t("patient.assigned", attendant=receiver.name),
        author_kind=AuthorKind.SYSTEM,
    )
    return conversation


async def transfer(
    ctx: Context, conversation_id: int, actor: User, to_attendant_id: int
) -> Conversation:
    """Hand a conversation, with the rest of its patient's episode, to another online
    attendant with room. Attendants transfer their own; managers may move any open
    conversation with a person or in the queue (a reassign)."""
    async with ctx.db.session() as session:
        conversation, episode = await lock_episode(session, conversation_id)
        if access.is_manager(actor):
            if conversation.status != ConversationStatus.OPEN:
                raise ConversationClosed()
            if conversation.owner == Owner.BOT:
                raise NotWithPerson()
        else:
            check_may_act(conversation, actor)
        if to_attendant_id == conversation.assigned_attendant_id:
            raise AttendantUnavailable()
        receiver = await lock_receiver(
            session, to_attendant_id, conversation.patient_id, presences=(Presence.ONLINE,)
        )
        kind = HandoffKind.REASSIGNED if access.is_manager(actor) else HandoffKind.TRANSFERRED
        events = await _move_episode(session, episode, kind, receiver, actor=actor)
    await _announce_new_owner(ctx, events, conversation_id, receiver)
    await distribute(ctx)  # the previous attendant may have a free slot now
    return conversation


async def reassign(
    ctx: Context, conversation_id: int, manager: User, to_attendant_id: int | None
) -> Conversation:
    """A manager moves a conversation to another attendant, or back to the queue (None)."""
    check_manager(manager)
    if to_attendant_id is not None:
        return await transfer(ctx, conversation_id, manager, to_attendant_id)
    if not await requeue(ctx, conversation_id, reason="manager", actor=manager):
        raise NotWithPerson()
    await after_requeue(ctx, [conversation_id])
    async with ctx.db.session() as session:
        return await session.get_one(Conversation, conversation_id)


async def take_over(ctx: Context, conversation_id: int, manager: User) -> Conversation:
    """Barge-in: a manager becomes the owner of the conversation (and of the rest of its
    patient's episode), whoever had it."""
    check_manager(manager)
    async with ctx.db.session() as session:
        conversation, episode = await lock_episode(session, conversation_id)
        if conversation.status != ConversationStatus.OPEN:
            raise ConversationClosed()
        if conversation.owner == Owner.BOT:
            raise NotWithPerson()
        events = await _move_episode(
            session, episode, HandoffKind.TAKEN_OVER, manager, actor=manager
        )
    if events:
        await _announce_new_owner(ctx, events, conversation_id, manager)
        await distribute(ctx)
    return conversation


async def _move_episode(
    session: AsyncSession,
    episode: list[Conversation],
    kind: HandoffKind,
    receiver: User,
    *,
    actor: User,
) -> list[Event]:
    """Give every conversation of the episode to `receiver`, logging each move."""
    now = utcnow()
    events = []
    for member in episode:
        previous = member.assigned_attendant_id if member.owner == Owner.ATTENDANT else None
        if previous == receiver.id:
            continue
        give_to(member, receiver.id, now)
        events.append(
            await record_transition(
                session,
                member,
                kind,
                actor=actor,
                from_attendant_id=previous,
                to_attendant_id=receiver.id,
            )
        )
    return events


async def _announce_new_owner(
    ctx: Context, events: list[Event], conversation_id: int, new_owner: User
) -> None:
    await publish(ctx, events)
    await send(
        ctx,
        conversation_id,
        text=t("patient.transferred", attendant=new_owner.name),
        author_kind=AuthorKind.SYSTEM,
    )


# ---------------------------------------------------------------------------------------------
# Back to the queue


async def requeue(
    ctx: Context,
    conversation_id: int,
    *,
    reason: str,
    actor: User | None = None,
    only_from: int | None = None,
    unanswered: bool = False,
) -> bool:
    """Send a conversation held by a person, with the rest of its patient's episode, back to
    the queue, keeping the original `queued_at` so it goes ahead of newer ones. False when it
    no longer applies: the conversation moved, was resolved, or (with `unanswered`) got a
    staff reply on any channel of the episode meanwhile. Callers then run `after_requeue`."""
    async with ctx.db.session() as session:
        conversation, episode = await lock_episode(session, conversation_id)
        if conversation.status != ConversationStatus.OPEN or conversation.owner != Owner.ATTENDANT:
            return False
        previous = conversation.assigned_attendant_id
        if only_from is not None and previous != only_from:
            return False
        held = [m for m in episode if m.assigned_attendant_id == previous]
        if unanswered:
            for member in held:
                if await staff_replied_since(session, member.id, member.assigned_at):
                    return False
        now = utcnow()
        events = []
        for member in held:
            member.owner = Owner.QUEUED
            member.assigned_attendant_id = None
            member.queued_at = member.queued_at or now
            events.append(
                await record_transition(
                    session,
                    member,
                    HandoffKind.REQUEUED,
                    actor=actor,
                    from_attendant_id=previous,
                    reason=reason,
                )
            )
    log.info("conversation %s back in the queue (%s)", conversation_id, reason)
    await publish(ctx, events)
    return True


async def after_requeue(ctx: Context, conversation_ids: list[int]) -> None:
    """Redistribute, then tell each patient still waiting where they stand."""
    assigned = {a.conversation.id for a in await distribute(ctx)}
    for conversation_id in conversation_ids:
        if conversation_id not in assigned:
            await tell_queue_position(ctx, conversation_id)


async def staff_replied_since(
    session: AsyncSession, conversation_id: int, since: datetime | None
) -> bool:
    query = select(
        exists().where(
            Message.conversation_id == conversation_id,
            Message.author_kind == AuthorKind.ATTENDANT,
            Message.internal.is_(False),
            Message.created_at >= since,
        )
    )
    return bool((await session.execute(query)).scalar())


# ---------------------------------------------------------------------------------------------
# Priority


async def set_priority(
    ctx: Context, conversation_id: int, manager: User, priority: Priority
) -> Conversation:
    """A manager raises (or lowers) a conversation's priority; the queue reorders at once."""
    check_manager(manager)
    async with ctx.db.session() as session:
        conversation = await lock_conversation(session, conversation_id)
        if conversation.status != ConversationStatus.OPEN:
            raise ConversationClosed()
        if conversation.priority == int(priority):
            return conversation
        conversation.priority = int(priority)
        event = await record_transition(
            session,
            conversation,
            HandoffKind.PRIORITY,
            actor=manager,
            priority=priority.name.lower(),
        )
    await ctx.bus.publish(event)
    if conversation.owner == Owner.QUEUED:
        await distribute(ctx)
    return conversation
