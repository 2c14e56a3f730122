"""The per-conversation handoff facts the analytics console aggregates (`HandoffFacts`): kept
in the transaction of the transition or reply that changes them, and rebuilt set-based from
the trail and the messages where history was written without them (the migration that added
them, a seeded database).

A fact is what a report would otherwise derive from every transition and message: whether a
bot → queue handoff happened, the first assignment, the latest resolution and who held the
conversation then, and the first human reply and who sent it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Executable, case, delete, false, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ASSIGNING_KINDS, AuthorKind, HandoffEvent, HandoffFacts, HandoffKind, Message
from models.db import upsert


async def note_transition(session: AsyncSession, event: HandoffEvent) -> None:
    """After `event` is flushed: the facts it changes, if any."""
    kind = HandoffKind(event.kind)
    if kind == HandoffKind.HANDOFF:
        changes: dict[str, Any] = {"handed": True}
    elif kind in ASSIGNING_KINDS:
        changes = {"first_assigned_at": event.created_at}
    elif kind == HandoffKind.RESOLVED:
        changes = {"resolution_event_id": event.id, "resolver_id": event.from_attendant_id}
    else:
        return
    statement = (await upsert(session, HandoffFacts)).values(
        conversation_id=event.conversation_id, **changes
    )
    incoming = statement.excluded
    if kind in ASSIGNING_KINDS:
        # The earliest assignment, whatever order the trail was written in.
        earliest = case(
            (
                or_(
                    HandoffFacts.first_assigned_at.is_(None),
                    incoming.first_assigned_at < HandoffFacts.first_assigned_at,
                ),
                incoming.first_assigned_at,
            ),
            else_=HandoffFacts.first_assigned_at,
        )
        changes = {"first_assigned_at": earliest}
    await session.execute(
        statement.on_conflict_do_update(index_elements=[HandoffFacts.conversation_id], set_=changes)
    )


async def note_reply(session: AsyncSession, message: Message) -> None:
    """After a staff message to the patient is flushed: the first reply, if it is."""
    statement = (await upsert(session, HandoffFacts)).values(
        conversation_id=message.conversation_id,
        first_reply_id=message.id,
        replier_id=message.author_id,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[HandoffFacts.conversation_id],
            set_={
                "first_reply_id": statement.excluded.first_reply_id,
                "replier_id": statement.excluded.replier_id,
            },
            where=HandoffFacts.first_reply_id.is_(None),
        )
    )


def rebuild() -> list[Executable]:
    """Every conversation's facts from its whole trail and messages, in a few scans."""
    events = HandoffEvent.__table__
    trail = (
        select(
            events.c.conversation_id.label("id"),
            func.max(case((events.c.kind == HandoffKind.HANDOFF, 1), else_=0)).label("handed"),
            func.min(case((events.c.kind.in_(ASSIGNING_KINDS), events.c.created_at))).label(
                "assigned_at"
            ),
            func.max(case((events.c.kind == HandoffKind.RESOLVED, events.c.id))).label(
                "resolution_id"
            ),
        )
        .group_by(events.c.conversation_id)
        .subquery("trail")
    )
    messages = Message.__table__
    replies = (
        select(messages.c.conversation_id.label("id"), func.min(messages.c.id).label("reply_id"))
        .where(messages.c.author_kind == AuthorKind.ATTENDANT, messages.c.internal == false())
        .group_by(messages.c.conversation_id)
        .subquery("replies")
    )
    conversations = select(trail.c.id).union(select(replies.c.id)).subquery("conversations")
    resolution = events.alias("resolution")
    reply = messages.alias("reply")
    rows = (
        select(
            conversations.c.id,
            func.coalesce(trail.c.handed, 0) == 1,
            trail.c.assigned_at,
            trail.c.resolution_id,
            resolution.c.from_attendant_id,
            replies.c.reply_id,
            reply.c.author_id,
        )
        .outerjoin(trail, trail.c.id == conversations.c.id)
        .outerjoin(resolution, resolution.c.id == trail.c.resolution_id)
        .outerjoin(replies, replies.c.id == conversations.c.id)
        .outerjoin(reply, reply.c.id == replies.c.reply_id)
    )
    columns = [
        "conversation_id",
        "handed",
        "first_assigned_at",
        "resolution_event_id",
        "resolver_id",
        "first_reply_id",
        "replier_id",
    ]
    return [delete(HandoffFacts), insert(HandoffFacts).from_select(columns, rows)]
