"""Whether staff are at work: the presence they set (online, pausa, offline), the heartbeat
of an open workspace, and going offline when the workspace has been closed too long. Going
offline sends the patients they held back to the queue; coming online takes from it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import or_, select, update

from core.context import Context
from core.errors import Forbidden
from handoff.transitions.common import TransitionError
from handoff.transitions.moves import after_requeue, requeue
from handoff.transitions.queueing import distribute
from models import (
    AttendantProfile,
    Conversation,
    ConversationStatus,
    Owner,
    Presence,
    User,
    utcnow,
)

log = logging.getLogger(__name__)


class NoPresence(TransitionError, Forbidden):
    """Only staff with an attendant profile (who serve patients) have a presence."""


async def set_presence(
    ctx: Context, attendant: User, presence: Presence, *, reason: str = "offline"
) -> None:
    """Online receives conversations; pausa keeps the current ones and receives none; offline
    sends the current ones back to the queue."""
    now = utcnow()
    async with ctx.db.session() as session:
        profile = await session.get(AttendantProfile, attendant.id, with_for_update=True)
        if profile is None:
            raise NoPresence()
        if profile.presence != presence:
            profile.presence_changed_at = now
        profile.presence = presence
        profile.last_seen_at = now
        profile.version += 1
    await ctx.bus.publish(
        {"type": "presence", "attendant_id": attendant.id, "presence": str(presence)}
    )
    if presence == Presence.OFFLINE:
        await requeue_all_of(ctx, attendant.id, reason=reason)
    elif presence == Presence.ONLINE:
        await distribute(ctx)


async def requeue_all_of(ctx: Context, attendant_id: int, *, reason: str) -> list[int]:
    """Send every patient the attendant holds back to the queue (each keeping their place),
    then redistribute."""
    query = select(Conversation.id).where(
        Conversation.assigned_attendant_id == attendant_id,
        Conversation.owner == Owner.ATTENDANT,
        Conversation.status == ConversationStatus.OPEN,
    )
    async with ctx.db.session() as session:
        held = (await session.execute(query.order_by(Conversation.id))).scalars().all()
    requeued = [
        conversation_id
        for conversation_id in held
        if await requeue(ctx, conversation_id, reason=reason, only_from=attendant_id)
    ]
    if requeued:
        await after_requeue(ctx, requeued)
    return requeued


async def heartbeat(ctx: Context, user_ids: Iterable[int]) -> None:
    """These staff have the workspace open right now (fed by the web process)."""
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
    for longer than PRESENCE_TIMEOUT_SECONDS (run by the worker)."""
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
        await set_presence(ctx, user, Presence.OFFLINE, reason="presence_timeout")
    return [user.id for user in gone]
