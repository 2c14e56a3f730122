"""The reception now: the queue and who is on duty."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AttendantProfile, Conversation, ConversationStatus, Owner, Presence, User


async def now_figures(session: AsyncSession, now: datetime) -> dict[str, Any]:
    waiting, oldest = (
        await session.execute(
            select(func.count(), func.min(Conversation.queued_at)).where(
                Conversation.owner == Owner.QUEUED,
                Conversation.status == ConversationStatus.OPEN,
            )
        )
    ).one()
    presence = dict(
        (
            await session.execute(
                select(AttendantProfile.presence, func.count())
                .join(User, User.id == AttendantProfile.user_id)
                .where(User.is_active.is_(True))
                .group_by(AttendantProfile.presence)
            )
        ).all()
    )
    longest = None if oldest is None else round((now - oldest).total_seconds())
    return {
        "queue_size": waiting,
        "longest_wait_seconds": longest,
        "attendants": {str(p): presence.get(p, 0) for p in Presence},
    }
