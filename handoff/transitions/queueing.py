"""Into the queue and out of it: the bot's handoff request, distribution to the attendant who
should have each waiting patient, and telling a waiting patient where they stand."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.catalog import t
from core.context import Context
from handoff.emergencies import UNCHECKED_EMERGENCY, may_jump_queue
from handoff.queue import queue_notice
from handoff.transitions.common import (
    Event,
    give_to,
    has_room,
    lock_conversation,
    lock_episode,
    patients_held,
    publish,
    record_transition,
)
from messaging.outbound import send
from models import (
    AttendantProfile,
    AuthorKind,
    Conversation,
    ConversationStatus,
    HandoffEvent,
    HandoffKind,
    Owner,
    Presence,
    Priority,
    Role,
    User,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assignment:
    conversation: Conversation
    attendant: User


async def request_handoff(
    ctx: Context, conversation_id: int, *, reason: str, priority: Priority = Priority.NORMAL
) -> Conversation:
    """Put a bot-owned conversation in the queue (or raise the priority of a waiting one).
    An anonymous emergency over its bound is queued without jumping (handoff.emergencies)."""
    async with ctx.db.session() as session:
        conversation = await lock_conversation(session, conversation_id)
        if conversation.status != ConversationStatus.OPEN:
            log.warning("handoff of closed conversation %s ignored", conversation.id)
            return conversation
        event = None
        newly_queued = conversation.owner == Owner.BOT
        if (
            priority == Priority.CRITICAL
            and conversation.priority < Priority.CRITICAL
            and not await may_jump_queue(session, ctx.limits, conversation)
        ):
            log.warning("conversation %s: anonymous emergency over the bound", conversation.id)
            priority, reason = Priority.NORMAL, UNCHECKED_EMERGENCY
            conversation.handoff_reason = reason  # when already waiting, flag it all the same
        if newly_queued:
            now = utcnow()
            conversation.owner = Owner.QUEUED
            conversation.handoff_reason = reason
            conversation.handed_off_at = now
            conversation.queued_at = now
            conversation.priority = max(conversation.priority, int(priority))
            event = await record_transition(
                session,
                conversation,
                HandoffKind.HANDOFF,
                reason=reason,
                priority=Priority(conversation.priority).name.lower(),
            )
        elif int(priority) > conversation.priority:
            conversation.priority = int(priority)
            event = await record_transition(
                session,
                conversation,
                HandoffKind.PRIORITY,
                priority=Priority(priority).name.lower(),
            )
    if event is None:
        return conversation
    log.info("conversation %s handed off (%s)", conversation.id, reason)
    await ctx.bus.publish(event)
    assignments = await distribute(ctx)
    if newly_queued and conversation.id not in {a.conversation.id for a in assignments}:
        await tell_queue_position(ctx, conversation.id)
    return conversation


async def tell_queue_position(ctx: Context, conversation_id: int) -> None:
    """Tell a patient still in the queue their place and the expected wait."""
    async with ctx.db.session() as session:
        conversation = await session.get_one(Conversation, conversation_id)
        if conversation.owner != Owner.QUEUED:
            return
        text = await queue_notice(session, ctx.settings, conversation)
    await send(ctx, conversation_id, text=text, author_kind=AuthorKind.SYSTEM)


async def distribute(ctx: Context) -> list[Assignment]:
    """Assign queued conversations, highest priority and longest waiting first, to free
    attendants until either runs out."""
    assignments = []
    while (assignment := await _assign_next(ctx)) is not None:
        assignments.append(assignment)
        log.info(
            "conversation %s assigned to attendant %s",
            assignment.conversation.id,
            assignment.attendant.id,
        )
        await send(
            ctx,
            assignment.conversation.id,
            text=t("patient.assigned", attendant=assignment.attendant.name),
            author_kind=AuthorKind.SYSTEM,
        )
    return assignments


async def _assign_next(ctx: Context) -> Assignment | None:
    """Give the head of the queue, with the rest of its episode, to the attendant who should
    have it. The head is read without a lock and re-checked once locked: waiting for a row
    another transaction holds (rather than skipping it) keeps a briefly locked critical
    conversation from being overtaken by a lower priority one."""
    while True:
        async with ctx.db.session() as session:
            head = await _queue_head(session)
            if head is None:
                return None
            conversation, episode = await lock_episode(session, head)
            if conversation.owner != Owner.QUEUED or conversation.status != ConversationStatus.OPEN:
                continue  # taken or resolved while we waited: read the queue again
            profile = await _pick_attendant(session, conversation)
            if profile is None:
                return None
            now = utcnow()
            profile.last_assigned_at = now
            profile.version += 1
            events: list[Event] = []
            for member in episode:
                if member.owner == Owner.QUEUED:
                    give_to(member, profile.user_id, now)
                    events.append(
                        await record_transition(
                            session, member, HandoffKind.ASSIGNED, to_attendant_id=profile.user_id
                        )
                    )
            attendant = await session.get_one(User, profile.user_id)
        await publish(ctx, events)
        return Assignment(conversation=conversation, attendant=attendant)


async def _queue_head(session: AsyncSession) -> int | None:
    query = (
        select(Conversation.id)
        .where(Conversation.owner == Owner.QUEUED, Conversation.status == ConversationStatus.OPEN)
        .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


# ---------------------------------------------------------------------------------------------
# Who should have the patient


async def _pick_attendant(
    session: AsyncSession, conversation: Conversation
) -> AttendantProfile | None:
    if (holder := await _sticky_holder(session, conversation)) is not None:
        return holder
    avoid = await _last_unresponsive(session, conversation.id)
    if avoid is not None and (
        profile := await _least_busy(session, conversation.patient_id, {avoid})
    ):
        return profile
    return await _least_busy(session, conversation.patient_id, set())


async def _sticky_holder(
    session: AsyncSession, conversation: Conversation
) -> AttendantProfile | None:
    """The attendant already serving this patient on another channel, if still at work."""
    query = (
        select(AttendantProfile)
        .join(Conversation, Conversation.assigned_attendant_id == AttendantProfile.user_id)
        .where(
            Conversation.patient_id == conversation.patient_id,
            Conversation.id != conversation.id,
            Conversation.owner == Owner.ATTENDANT,
            Conversation.status == ConversationStatus.OPEN,
            AttendantProfile.presence != Presence.OFFLINE,
        )
        .limit(1)
        .with_for_update(of=AttendantProfile)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _last_unresponsive(session: AsyncSession, conversation_id: int) -> int | None:
    """Who this conversation was last taken from for not answering: try someone else first."""
    query = (
        select(HandoffEvent.from_attendant_id, HandoffEvent.details)
        .where(
            HandoffEvent.conversation_id == conversation_id,
            HandoffEvent.kind == str(HandoffKind.REQUEUED),
        )
        .order_by(HandoffEvent.id.desc())
        .limit(1)
    )
    row = (await session.execute(query)).tuples().first()
    if row is None:
        return None
    from_attendant_id, details = row
    return from_attendant_id if (details or {}).get("reason") == "no_answer" else None


async def _least_busy(
    session: AsyncSession, patient_id: int, excluded: set[int]
) -> AttendantProfile | None:
    full: set[int] = set()
    while True:
        # Under READ COMMITTED the ranking may predate an assignment that committed while we
        # waited for the row lock: recount once it is ours, and if that attendant turned out
        # full, release the row (rolling back the savepoint) and try the next.
        savepoint = await session.begin_nested()
        profile = (await session.execute(_candidates(excluded | full))).scalar_one_or_none()
        if profile is None:
            await savepoint.rollback()
            return None
        if await has_room(session, profile, patient_id):
            await savepoint.commit()
            return profile
        await savepoint.rollback()
        full.add(profile.user_id)


def _candidates(excluded: set[int]) -> Select[AttendantProfile]:
    """Online attendants with a free slot: fewest patients first, then the longest since
    their last assignment."""
    held = patients_held(AttendantProfile.user_id).scalar_subquery()
    query = (
        select(AttendantProfile)
        .join(User, User.id == AttendantProfile.user_id)
        .where(
            AttendantProfile.presence == Presence.ONLINE,
            User.role == Role.ATTENDANT,
            User.is_active.is_(True),
            held < AttendantProfile.capacity,
        )
        .order_by(
            held, AttendantProfile.last_assigned_at.asc().nulls_first(), AttendantProfile.user_id
        )
        .limit(1)
        .with_for_update(of=AttendantProfile)
    )
    if excluded:
        query = query.where(AttendantProfile.user_id.not_in(excluded))
    return query
