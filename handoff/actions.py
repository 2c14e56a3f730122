"""Ownership transitions: the only code that moves a conversation between bot, queue and
attendant. Each transition is one transaction that locks what it changes, so concurrent
writers (in one process or several on PostgreSQL) can never assign a conversation twice or
put an attendant over capacity."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from handoff.catalog import t
from handoff.context import Context
from handoff.events import conversation_event
from handoff.outbound import send
from models import (
    AttendantProfile,
    AuthorKind,
    Conversation,
    ConversationStatus,
    Owner,
    Presence,
    Priority,
    Role,
    User,
    utcnow,
)

log = logging.getLogger(__name__)

HAND_BACK_INTENT = "EXTERNAL_atendimento_encerrado"


class TransitionError(Exception):
    """A transition that is not allowed; `code` is a catalog key for the message."""

    code = "error.conflict"


class NotFound(TransitionError):
    code = "error.not_found"


class Forbidden(TransitionError):
    code = "error.forbidden"


class NotOwner(TransitionError):
    code = "error.not_owner"


@dataclass(frozen=True)
class Assignment:
    conversation: Conversation
    attendant: User


async def _lock_conversation(session: AsyncSession, conversation_id: int) -> Conversation:
    query = select(Conversation).where(Conversation.id == conversation_id).with_for_update()
    conversation = (await session.execute(query)).scalar_one_or_none()
    if conversation is None:
        raise NotFound(conversation_id)
    return conversation


def _check_may_act(conversation: Conversation, actor: User) -> None:
    if actor.role in (Role.MANAGER, Role.ADMIN):
        return
    if actor.role != Role.ATTENDANT:
        raise Forbidden(actor.id)
    if conversation.owner != Owner.ATTENDANT or conversation.assigned_attendant_id != actor.id:
        raise NotOwner(conversation.id)


async def request_handoff(
    ctx: Context, conversation_id: int, *, reason: str, priority: Priority = Priority.NORMAL
) -> Conversation:
    """Put a bot-owned conversation in the queue (or raise the priority of a queued one)."""
    async with ctx.db.session() as session:
        conversation = await _lock_conversation(session, conversation_id)
        newly_queued = conversation.owner == Owner.BOT
        if newly_queued:
            now = utcnow()
            conversation.owner = Owner.QUEUED
            conversation.handoff_reason = reason
            conversation.handed_off_at = now
            conversation.queued_at = now
            conversation.version += 1
        conversation.priority = max(conversation.priority, int(priority))
    log.info("conversation %s handed off (%s)", conversation.id, reason)
    await ctx.bus.publish(conversation_event(conversation))
    assignments = await distribute(ctx)
    if newly_queued and conversation.id not in {a.conversation.id for a in assignments}:
        await send(ctx, conversation.id, text=t("patient.queued"), author_kind=AuthorKind.SYSTEM)
    return conversation


def _count_active(attendant_id: Any) -> Select:
    """How many open conversations an attendant (an id, or a column to correlate) holds."""
    return select(func.count(Conversation.id)).where(
        Conversation.assigned_attendant_id == attendant_id,
        Conversation.owner == Owner.ATTENDANT,
        Conversation.status == ConversationStatus.OPEN,
    )


async def _lock_free_attendant(session: AsyncSession) -> AttendantProfile | None:
    """The online attendant with a free slot and the fewest active conversations (ties: the
    longest since their last assignment), locked for this transaction."""
    active = _count_active(AttendantProfile.user_id).scalar_subquery()
    query = (
        select(AttendantProfile)
        .join(User, User.id == AttendantProfile.user_id)
        .where(
            AttendantProfile.presence == Presence.ONLINE,
            User.role == Role.ATTENDANT,
            User.is_active.is_(True),
            active < AttendantProfile.capacity,
        )
        .order_by(
            active, AttendantProfile.last_assigned_at.asc().nulls_first(), AttendantProfile.user_id
        )
        .limit(1)
        .with_for_update(of=AttendantProfile)
    )
    profile = (await session.execute(query)).scalar_one_or_none()
    # Under READ COMMITTED the count above may predate a concurrent assignment that
    # committed while we waited for the lock: count again now that the row is ours.
    if (
        profile
        and (await session.execute(_count_active(profile.user_id))).scalar_one() >= profile.capacity
    ):
        return None
    return profile


async def _next_queued(session: AsyncSession) -> Conversation | None:
    query = (
        select(Conversation)
        .where(Conversation.owner == Owner.QUEUED, Conversation.status == ConversationStatus.OPEN)
        .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _assign_next(ctx: Context) -> Assignment | None:
    async with ctx.db.session() as session:
        conversation = await _next_queued(session)
        if conversation is None:
            return None
        profile = await _lock_free_attendant(session)
        if profile is None:
            return None
        now = utcnow()
        conversation.owner = Owner.ATTENDANT
        conversation.assigned_attendant_id = profile.user_id
        conversation.assigned_at = now
        conversation.version += 1
        profile.last_assigned_at = now
        profile.version += 1
        attendant = await session.get(User, profile.user_id)
    return Assignment(conversation=conversation, attendant=attendant)


async def distribute(ctx: Context) -> list[Assignment]:
    """Assign queued conversations to free attendants until either runs out."""
    assignments = []
    while (assignment := await _assign_next(ctx)) is not None:
        assignments.append(assignment)
        log.info(
            "conversation %s assigned to attendant %s",
            assignment.conversation.id,
            assignment.attendant.id,
        )
        await ctx.bus.publish(conversation_event(assignment.conversation))
        await send(
            ctx,
            assignment.conversation.id,
            text=t("patient.assigned", attendant=assignment.attendant.name),
            author_kind=AuthorKind.SYSTEM,
        )
    return assignments


async def reply(ctx: Context, conversation_id: int, actor: User, text: str) -> None:
    """An attendant's (or manager's) message to the patient, on the conversation's channel."""
    async with ctx.db.session() as session:
        conversation = await _lock_conversation(session, conversation_id)
        _check_may_act(conversation, actor)
        if conversation.first_human_reply_at is None:
            conversation.first_human_reply_at = utcnow()
    await send(
        ctx, conversation_id, text=text, author_kind=AuthorKind.ATTENDANT, author_id=actor.id
    )


async def resolve(ctx: Context, conversation_id: int, actor: User) -> Conversation:
    """Close the human episode and hand the patient back to the bot."""
    async with ctx.db.session() as session:
        conversation = await _lock_conversation(session, conversation_id)
        _check_may_act(conversation, actor)
        now = utcnow()
        conversation.owner = Owner.BOT
        conversation.status = ConversationStatus.CLOSED
        conversation.resolved_at = now
        conversation.closed_at = now
        conversation.version += 1
    await ctx.bus.publish(conversation_event(conversation))
    await ctx.bot.hand_back(conversation.patient_id, HAND_BACK_INTENT)
    await distribute(ctx)
    return conversation


async def set_presence(ctx: Context, attendant: User, presence: Presence) -> None:
    async with ctx.db.session() as session:
        profile = await session.get(AttendantProfile, attendant.id, with_for_update=True)
        if profile is None:
            raise Forbidden(attendant.id)
        profile.presence = presence
        profile.presence_changed_at = utcnow()
        profile.version += 1
    await ctx.bus.publish(
        {"type": "presence", "attendant_id": attendant.id, "presence": str(presence)}
    )
    if presence == Presence.ONLINE:
        await distribute(ctx)
