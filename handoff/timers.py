"""Time-driven handoff rules, run by the worker (`sweep`): attendants who left without going
offline (handoff.presence), conversations nobody answers, hand-backs to the bot that did
not get through, and bot conversations gone quiet (idle close)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, exists, select

from core.context import Context
from handoff.presence import expire_presence
from handoff.transitions.moves import after_requeue, requeue
from handoff.transitions.resolution import close_idle, retry_hand_backs
from models import (
    AuthorKind,
    Conversation,
    ConversationStatus,
    Message,
    Owner,
    Role,
    User,
    utcnow,
)


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
        if await requeue(
            ctx, row.id, reason="no_answer", only_from=row.assigned_attendant_id, unanswered=True
        )
    ]
    if requeued:
        await after_requeue(ctx, requeued)
    return requeued


async def close_idle_conversations(ctx: Context) -> list[int]:
    """Close the bot's conversations quiet for IDLE_CLOSE_HOURS (0: never)."""
    hours = ctx.settings.idle_close_hours
    if hours <= 0:
        return []
    return await close_idle(ctx, timedelta(hours=hours))


async def sweep(ctx: Context) -> None:
    """One worker tick of every handoff timer."""
    await expire_presence(ctx)
    await requeue_unanswered(ctx)
    await retry_hand_backs(ctx)
    await close_idle_conversations(ctx)
