"""Time-driven handoff rules, run by the worker (`sweep`) and fed by the web process
(`heartbeat`): attendants who left without going offline, conversations nobody answers, and
hand-backs to the bot that did not get through."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import and_, exists, or_, select, update

from core.context import Context
from handoff import transitions
from models import (
    AttendantProfile,
    AuthorKind,
    Conversation,
    ConversationStatus,
    Message,
    Owner,
    Presence,
    Role,
    User,
    utcnow,
)

log = logging.getLogger(__name__)


async def heartbeat(ctx: Context, user_ids: Iterable[int]) -> None:
    """These staff have the workspace open right now."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    async with ctx.db.session() as session:
        await session.execute(
            update(AttendantProfile)
            .where(AttendantProfile.user_id.in_(ids))
            .values(last_seen_at=utcnow())
        )


async def expire_presence(ctx: Context) -> list[int]:
    """Set offline (and requeue the conversations of) staff whose workspace has been closed
    for longer than PRESENCE_TIMEOUT_SECONDS."""
    timeout = ctx.settings.presence_timeout_seconds
    if timeout <= 0:
        return []
    cutoff = utcnow() - timedelta(seconds=timeout)
    query = (
        select(User)
        .join(AttendantProfile, AttendantProfile.user_id == User.id)
        .where(
            AttendantProfile.presence != Presence.OFFLINE,
            or_(AttendantProfile.last_seen_at.is_(None), AttendantProfile.last_seen_at < cutoff),
            # A change of presence counts as being seen, even before the first heartbeat.
            AttendantProfile.presence_changed_at < cutoff,
        )
    )
    async with ctx.db.session() as session:
        gone = (await session.execute(query)).scalars().all()
    for user in gone:
        log.info("staff %s left the workspace; setting offline", user.id)
        await transitions.set_presence(ctx, user, Presence.OFFLINE, reason="presence_timeout")
    return [user.id for user in gone]


async def requeue_unanswered(ctx: Context) -> list[int]:
    """Send back to the queue conversations whose attendant has not answered within
    REASSIGN_AFTER_SECONDS of receiving them (managers who took one over are exempt)."""
    limit = ctx.settings.reassign_after_seconds
    if limit <= 0:
        return []
    cutoff = utcnow() - timedelta(seconds=limit)
    answered = exists().where(
        Message.conversation_id == Conversation.id,
        Message.author_kind == AuthorKind.ATTENDANT,
        Message.internal.is_(False),
        Message.created_at >= Conversation.assigned_at,
    )
    query = (
        select(Conversation.id, Conversation.assigned_attendant_id)
        .join(User, User.id == Conversation.assigned_attendant_id)
        .where(
            Conversation.owner == Owner.ATTENDANT,
            Conversation.status == ConversationStatus.OPEN,
            User.role == Role.ATTENDANT,
            and_(Conversation.assigned_at < cutoff, ~answered),
        )
        .order_by(Conversation.priority.desc(), Conversation.queued_at)
    )
    async with ctx.db.session() as session:
        stale = (await session.execute(query)).all()
    requeued = [
        row.id
        for row in stale
        if await transitions.requeue(
            ctx, row.id, reason="no_answer", only_from=row.assigned_attendant_id, unanswered=True
        )
    ]
    if requeued:
        await transitions.after_requeue(ctx, requeued)
    return requeued


async def sweep(ctx: Context) -> None:
    """One worker tick of every handoff timer."""
    await expire_presence(ctx)
    await requeue_unanswered(ctx)
    await transitions.retry_hand_backs(ctx)
