"""The end of a human episode: resolving it on every channel of the patient, and handing the
patient back to the bot once (retried by the worker when the assistant cannot be reached);
the end of a bot conversation gone quiet (idle close); the end of every open conversation of
a patient whose data is erased; and of all but one of the open conversations two merged
records bring together."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.context import AssistantUnavailable, Context
from core.events import RESOLVED
from handoff.transitions.common import (
    Event,
    check_may_act,
    lock_episode,
    publish,
    record_transition,
)
from handoff.transitions.queueing import distribute
from models import Conversation, ConversationStatus, HandoffKind, Owner, User, utcnow

log = logging.getLogger(__name__)

HAND_BACK_INTENT = "EXTERNAL_atendimento_encerrado"
# A resolution whose hand-back has not been confirmed this long after is retried by the worker
# (longer than the Rasa call's own timeout, so a call still in flight is never repeated).
HAND_BACK_RETRY_AFTER = timedelta(seconds=60)
HAND_BACK_GIVE_UP_AFTER = timedelta(days=1)
HOUR = timedelta(hours=1)


async def resolve(ctx: Context, conversation_id: int, actor: User) -> Conversation:
    """Close the human episode (the patient's conversations with a person on every channel)
    and hand the patient back to the bot once (which then asks how it went). The hand-back
    runs only after the resolution committed; if the assistant cannot be reached the
    resolution stands and the worker retries the hand-back."""
    async with ctx.db.session() as session:
        conversation, episode = await lock_episode(session, conversation_id)
        check_may_act(conversation, actor)
        now = utcnow()
        events: list[Event] = []
        for member in episode:
            previous = member.assigned_attendant_id
            member.owner = Owner.BOT
            member.status = ConversationStatus.CLOSED
            member.resolved_at = now
            member.closed_at = now
            events.append(
                await record_transition(
                    session, member, HandoffKind.RESOLVED, actor=actor, from_attendant_id=previous
                )
            )
    await publish(ctx, events)
    # The bot takes the patient back (see listeners): once for the conversations resolved
    # together.
    resolved = {"patient_id": conversation.patient_id, "conversation_ids": [m.id for m in episode]}
    await ctx.bus.publish({"type": RESOLVED, **resolved})
    await distribute(ctx)
    return conversation


async def close_for_erasure(ctx: Context, patient_ids: Sequence[int]) -> list[int]:
    """The patients' data was erased (accounts.erasure): every open conversation of theirs
    closes wherever it is — with the bot, in the queue or with a person — unassigned, and
    leaves the staff screens. No hand-back and no satisfaction question: nobody is there to
    ask, and their channels are unlinked. The freed attendants get the next in the queue.
    The conversations closed."""
    async with ctx.db.session() as session:
        query = (
            select(Conversation)
            .where(
                Conversation.patient_id.in_(patient_ids),
                Conversation.status == ConversationStatus.OPEN,
            )
            .order_by(Conversation.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        now = utcnow()
        closed = list((await session.execute(query)).scalars())
        events: list[Event] = []
        for conversation in closed:
            previous = conversation.assigned_attendant_id
            conversation.owner = Owner.BOT
            conversation.assigned_attendant_id = None
            conversation.status = ConversationStatus.CLOSED
            conversation.closed_at = now
            events.append(
                await record_transition(
                    session,
                    conversation,
                    HandoffKind.CLOSED_FOR_ERASURE,
                    from_attendant_id=previous,
                )
            )
    await publish(ctx, events)
    if closed:
        await distribute(ctx)
    return [conversation.id for conversation in closed]


# Conversations the idle close takes per transaction (the worker's next tick takes the rest).
IDLE_CLOSE_BATCH = 500


async def close_idle(ctx: Context, quiet_for: timedelta) -> list[int]:
    """Close the conversations the bot owns that have had no message, either way, for
    `quiet_for`: the patient's next message opens a new one. Not a resolution (nobody
    resolved anything, no satisfaction question, no hand-back): the analytics console counts
    such a conversation as kept by the bot to the end. Rows another transaction holds are
    skipped (a message arriving now), so several workers never close one twice. The
    conversations closed."""
    cutoff = utcnow() - quiet_for
    async with ctx.db.session() as session:
        query = (
            select(Conversation)
            .where(
                Conversation.status == ConversationStatus.OPEN,
                Conversation.owner == Owner.BOT,
                Conversation.last_message_at < cutoff,
            )
            .order_by(Conversation.id)
            .limit(IDLE_CLOSE_BATCH)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        now = utcnow()
        closed = list((await session.execute(query)).scalars())
        events: list[Event] = []
        for conversation in closed:
            conversation.status = ConversationStatus.CLOSED
            conversation.closed_at = now
            events.append(
                await record_transition(
                    session, conversation, HandoffKind.CLOSED_IDLE, idle_hours=quiet_for / HOUR
                )
            )
    await publish(ctx, events)
    return [conversation.id for conversation in closed]


async def keep_one_open(
    session: AsyncSession, patient_id: int, actor: User, *, prefer: Sequence[int] = ()
) -> tuple[Conversation | None, list[Event]]:
    """Two records of one patient were merged (in the caller's transaction): of the open
    conversations they bring together, one goes on — the one with a person, else the one in
    the queue, else one of `prefer`, else the latest — at the highest priority among them;
    the others close where they were, unassigned (their messages stay in the patient's
    history). Returns it (None when none was open) and the live events to publish after the
    commit; the caller distributes the queue if an attendant was freed."""
    query = (
        select(Conversation)
        .where(
            Conversation.patient_id == patient_id,
            Conversation.status == ConversationStatus.OPEN,
        )
        .order_by(Conversation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    open_ones = list((await session.execute(query)).scalars())
    if not open_ones:
        return None, []
    rank = {Owner.ATTENDANT: 2, Owner.QUEUED: 1, Owner.BOT: 0}
    kept = max(
        open_ones,
        key=lambda c: (rank[c.owner], c.id in prefer, c.last_message_at, c.id),
    )
    kept.priority = max(c.priority for c in open_ones)
    now = utcnow()
    events: list[Event] = []
    for conversation in open_ones:
        if conversation is kept:
            continue
        previous = conversation.assigned_attendant_id
        conversation.owner = Owner.BOT
        conversation.assigned_attendant_id = None
        conversation.status = ConversationStatus.CLOSED
        conversation.closed_at = now
        events.append(
            await record_transition(
                session,
                conversation,
                HandoffKind.CLOSED_BY_MERGE,
                actor=actor,
                from_attendant_id=previous,
                into_conversation_id=kept.id,
            )
        )
    return kept, events


async def hand_back(ctx: Context, patient_id: int, conversation_ids: list[int]) -> bool:
    """Ask the assistant to resume the patient and speak first (once for the conversations resolved
    together); record it on each of them once confirmed."""
    try:
        await ctx.bot.hand_back(ctx, patient_id, HAND_BACK_INTENT)
    except (AssistantUnavailable, OSError) as exc:
        log.warning(
            "hand-back of patient %s to the bot failed (%s); will retry",
            patient_id,
            type(exc).__name__,
        )
        return False
    async with ctx.db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id.in_(conversation_ids))
            .values(handed_back_at=utcnow())
        )
    return True


async def retry_hand_backs(ctx: Context) -> int:
    """Hand back patients whose resolved conversations' hand-back never got through; returns
    how many patients were handed back."""
    now = utcnow()
    query = (
        select(Conversation.patient_id, Conversation.id)
        .where(
            Conversation.resolved_at.is_not(None),
            Conversation.handed_back_at.is_(None),
            Conversation.resolved_at < now - HAND_BACK_RETRY_AFTER,
            Conversation.resolved_at > now - HAND_BACK_GIVE_UP_AFTER,
        )
        .order_by(Conversation.resolved_at)
    )
    pending: dict[int, list[int]] = {}
    async with ctx.db.session() as session:
        for patient_id, conversation_id in await session.execute(query):
            pending.setdefault(patient_id, []).append(conversation_id)
    return sum([await hand_back(ctx, patient, ids) for patient, ids in pending.items()])
