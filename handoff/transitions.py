"""Ownership transitions: the only code that moves a conversation between bot, queue and
attendant, and the only code that records what staff did in one.

Each transition is one transaction that locks what it changes (the patient's open
conversation rows, always in id order, then the receiving attendant's profile row), re-checks
what it read, and logs a `HandoffEvent` before committing. So concurrent writers, in one
process or several on PostgreSQL, can never assign a conversation twice or put an attendant
over capacity. Side effects that leave the database (live events, messages to the patient,
the Rasa hand-back) happen after the commit.

Capacity counts patients, not conversations: one patient followed on two channels by the
same attendant takes one slot. Those conversations form the patient's *episode* (their open
conversations in the queue or with a person) and every transition moves the whole episode,
so a patient is never split between two people and resolving hands them back to the bot once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import distinct, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from core.catalog import t
from core.context import AssistantUnavailable, Context
from core.events import BOT_HANDOFF, RESOLVED, EventBus, conversation_event, message_event
from handoff.queue import queue_notice
from messaging.history import open_conversation, record_outbound
from messaging.outbound import deliver, send
from models import (
    Appointment,
    AttendantAction,
    AttendantProfile,
    AuthorKind,
    ChannelIdentity,
    Conversation,
    ConversationStatus,
    HandoffEvent,
    HandoffKind,
    Message,
    Owner,
    Presence,
    Priority,
    Role,
    User,
    utcnow,
)
from models.views import action_view, handoff_event_view
from scheduling import appointments
from scheduling.reminders import ReminderNotSent, send_now

log = logging.getLogger(__name__)

HAND_BACK_INTENT = "EXTERNAL_atendimento_encerrado"
MANAGER_ROLES = (Role.MANAGER, Role.ADMIN)
# A resolution whose hand-back has not been confirmed this long after is retried by the worker
# (longer than the Rasa call's own timeout, so a call still in flight is never repeated).
HAND_BACK_RETRY_AFTER = timedelta(seconds=60)
HAND_BACK_GIVE_UP_AFTER = timedelta(days=1)


class TransitionError(Exception):
    """A transition that is not allowed; `code` is a catalog key, `status` the HTTP status."""

    code = "error.conflict"
    status = 409


class NotFound(TransitionError):
    code = "error.not_found"
    status = 404


class Forbidden(TransitionError):
    code = "error.forbidden"
    status = 403


class NotOwner(Forbidden):
    code = "error.not_owner"


class ManualTakeDisabled(Forbidden):
    code = "error.manual_take_disabled"


class NotQueued(TransitionError):
    code = "error.not_queued"


class NotWithPerson(TransitionError):
    code = "error.not_with_person"


class ConversationClosed(TransitionError):
    code = "error.conversation_closed"


class AttendantUnavailable(TransitionError):
    code = "error.attendant_unavailable"


class ChannelUnavailable(TransitionError):
    code = "error.channel_unavailable"


class ChannelBusy(TransitionError):
    code = "error.channel_busy"


class UnknownAction(TransitionError):
    code = "error.unknown_action"
    status = 400


class BadSlot(TransitionError):
    """A booking action without a doctor and an aware ISO start (as slot search gives)."""

    code = "agenda.error.pick_a_slot"
    status = 400


class Refused(TransitionError):
    """The agenda refused the change an action asked for; `code` says why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Assignment:
    conversation: Conversation
    attendant: User


def is_manager(user: User) -> bool:
    return user.role in MANAGER_ROLES


# ---------------------------------------------------------------------------------------------
# Locking and bookkeeping shared by every transition


async def _lock_conversation(session: AsyncSession, conversation_id: int) -> Conversation:
    query = select(Conversation).where(Conversation.id == conversation_id).with_for_update()
    conversation = (await session.execute(query)).scalar_one_or_none()
    if conversation is None:
        raise NotFound(conversation_id)
    return conversation


async def _lock_episode(
    session: AsyncSession, conversation_id: int
) -> tuple[Conversation, list[Conversation]]:
    """Lock the conversation and every open conversation of its patient, in id order (one
    order for every transition, so two never wait on each other), read fresh. Returns it with
    the conversations that move with it: its episode when it is with a person or in the
    queue, else just itself."""
    patient_query = select(Conversation.patient_id).where(Conversation.id == conversation_id)
    patient_id = (await session.execute(patient_query)).scalar_one_or_none()
    if patient_id is None:
        raise NotFound(conversation_id)
    query = (
        select(Conversation)
        .where(
            Conversation.patient_id == patient_id,
            or_(Conversation.status == ConversationStatus.OPEN, Conversation.id == conversation_id),
        )
        .order_by(Conversation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    locked = (await session.execute(query)).scalars().all()
    conversation = next(c for c in locked if c.id == conversation_id)
    if not _in_episode(conversation):
        return conversation, [conversation]
    return conversation, [c for c in locked if _in_episode(c)]


def _in_episode(conversation: Conversation) -> bool:
    return conversation.status == ConversationStatus.OPEN and conversation.owner != Owner.BOT


def _check_may_act(conversation: Conversation, actor: User) -> None:
    """Managers act on any open conversation; attendants only on those assigned to them."""
    if conversation.status != ConversationStatus.OPEN:
        raise ConversationClosed(conversation.id)
    if is_manager(actor):
        return
    if actor.role != Role.ATTENDANT:
        raise Forbidden(actor.id)
    if conversation.owner != Owner.ATTENDANT or conversation.assigned_attendant_id != actor.id:
        raise NotOwner(conversation.id)


def _check_manager(actor: User) -> None:
    if not is_manager(actor):
        raise Forbidden(actor.id)


async def _transition(
    session: AsyncSession,
    conversation: Conversation,
    kind: HandoffKind,
    *,
    actor: User | None = None,
    from_attendant_id: int | None = None,
    to_attendant_id: int | None = None,
    **details: Any,
) -> dict[str, Any]:
    """Log the transition in the same transaction and return the live event announcing it."""
    conversation.version += 1
    row = HandoffEvent(
        conversation_id=conversation.id,
        patient_id=conversation.patient_id,
        kind=str(kind),
        actor_id=actor.id if actor else None,
        from_attendant_id=from_attendant_id,
        to_attendant_id=to_attendant_id,
        details=details,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    patient = await session.get(User, conversation.patient_id)
    return conversation_event(conversation, patient.name, change=handoff_event_view(row))


def _give_to(conversation: Conversation, attendant_id: int, now: datetime) -> None:
    conversation.owner = Owner.ATTENDANT
    conversation.assigned_attendant_id = attendant_id
    conversation.assigned_at = now


def _patients_held(attendant_id: Any) -> Select:
    """How many patients an attendant (an id, or a column to correlate) is serving now."""
    return select(func.count(distinct(Conversation.patient_id))).where(
        Conversation.assigned_attendant_id == attendant_id,
        Conversation.owner == Owner.ATTENDANT,
        Conversation.status == ConversationStatus.OPEN,
    )


async def _holds_patient(session: AsyncSession, attendant_id: int, patient_id: int) -> bool:
    query = select(
        exists().where(
            Conversation.assigned_attendant_id == attendant_id,
            Conversation.patient_id == patient_id,
            Conversation.owner == Owner.ATTENDANT,
            Conversation.status == ConversationStatus.OPEN,
        )
    )
    return bool((await session.execute(query)).scalar())


async def _has_room(session: AsyncSession, profile: AttendantProfile, patient_id: int) -> bool:
    """Counted after the profile row is locked, so no concurrent assignment is missed."""
    if await _holds_patient(session, profile.user_id, patient_id):
        return True
    return (await session.execute(_patients_held(profile.user_id))).scalar_one() < profile.capacity


async def _lock_receiver(
    session: AsyncSession, user_id: int, patient_id: int, *, presences: tuple[Presence, ...]
) -> User:
    """Lock the staff member who is about to receive a conversation and check they may:
    active staff in one of `presences` and, for attendants, with a free slot."""
    user = await session.get(User, user_id)
    if user is None or not user.is_active or user.role not in (Role.ATTENDANT, *MANAGER_ROLES):
        raise AttendantUnavailable(user_id)
    profile = await session.get(
        AttendantProfile, user_id, with_for_update=True, populate_existing=True
    )
    if profile is None or profile.presence not in presences:
        raise AttendantUnavailable(user_id)
    if user.role == Role.ATTENDANT:
        if not await _has_room(session, profile, patient_id):
            raise AttendantUnavailable(user_id)
        profile.last_assigned_at = utcnow()
        profile.version += 1
    return user


# ---------------------------------------------------------------------------------------------
# Handoff and auto-distribution


async def request_handoff(
    ctx: Context, conversation_id: int, *, reason: str, priority: Priority = Priority.NORMAL
) -> Conversation:
    """Put a bot-owned conversation in the queue (or raise the priority of a waiting one)."""
    async with ctx.db.session() as session:
        conversation = await _lock_conversation(session, conversation_id)
        if conversation.status != ConversationStatus.OPEN:
            log.warning("handoff of closed conversation %s ignored", conversation.id)
            return conversation
        event = None
        newly_queued = conversation.owner == Owner.BOT
        if newly_queued:
            now = utcnow()
            conversation.owner = Owner.QUEUED
            conversation.handoff_reason = reason
            conversation.handed_off_at = now
            conversation.queued_at = now
            conversation.priority = max(conversation.priority, int(priority))
            event = await _transition(
                session,
                conversation,
                HandoffKind.HANDOFF,
                reason=reason,
                priority=Priority(conversation.priority).name.lower(),
            )
        elif int(priority) > conversation.priority:
            conversation.priority = int(priority)
            event = await _transition(
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
        await _tell_queue_position(ctx, conversation.id)
    return conversation


async def _tell_queue_position(ctx: Context, conversation_id: int) -> None:
    async with ctx.db.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        if conversation.owner != Owner.QUEUED:
            return
        text = await queue_notice(session, ctx.settings, conversation)
    await send(ctx, conversation_id, text=text, author_kind=AuthorKind.SYSTEM)


def _candidates(excluded: set[int]) -> Select:
    """Online attendants with a free slot: fewest patients first, then the longest since
    their last assignment."""
    held = _patients_held(AttendantProfile.user_id).scalar_subquery()
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
        if await _has_room(session, profile, patient_id):
            await savepoint.commit()
            return profile
        await savepoint.rollback()
        full.add(profile.user_id)


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
    row = (await session.execute(query)).first()
    if row is None or (row.details or {}).get("reason") != "no_answer":
        return None
    return row.from_attendant_id


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


async def _queue_head(session: AsyncSession) -> int | None:
    query = (
        select(Conversation.id)
        .where(Conversation.owner == Owner.QUEUED, Conversation.status == ConversationStatus.OPEN)
        .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


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
            conversation, episode = await _lock_episode(session, head)
            if conversation.owner != Owner.QUEUED or conversation.status != ConversationStatus.OPEN:
                continue  # taken or resolved while we waited: read the queue again
            profile = await _pick_attendant(session, conversation)
            if profile is None:
                return None
            now = utcnow()
            profile.last_assigned_at = now
            profile.version += 1
            events = []
            for member in episode:
                if member.owner == Owner.QUEUED:
                    _give_to(member, profile.user_id, now)
                    events.append(
                        await _transition(
                            session, member, HandoffKind.ASSIGNED, to_attendant_id=profile.user_id
                        )
                    )
            attendant = await session.get(User, profile.user_id)
        await _publish(ctx, events)
        return Assignment(conversation=conversation, attendant=attendant)


async def _publish(ctx: Context, events: list[dict[str, Any]]) -> None:
    for event in events:
        await ctx.bus.publish(event)


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


# ---------------------------------------------------------------------------------------------
# Moving a conversation between people


async def _announce_new_owner(
    ctx: Context, events: list[dict[str, Any]], conversation_id: int, new_owner: User
) -> None:
    await _publish(ctx, events)
    await send(
        ctx,
        conversation_id,
        text=t("patient.transferred", attendant=new_owner.name),
        author_kind=AuthorKind.SYSTEM,
    )


async def _move_episode(
    session: AsyncSession,
    episode: list[Conversation],
    kind: HandoffKind,
    receiver: User,
    *,
    actor: User,
) -> list[dict[str, Any]]:
    """Give every conversation of the episode to `receiver`, logging each move."""
    now = utcnow()
    events = []
    for member in episode:
        previous = member.assigned_attendant_id if member.owner == Owner.ATTENDANT else None
        if previous == receiver.id:
            continue
        _give_to(member, receiver.id, now)
        events.append(
            await _transition(
                session,
                member,
                kind,
                actor=actor,
                from_attendant_id=previous,
                to_attendant_id=receiver.id,
            )
        )
    return events


async def take(ctx: Context, conversation_id: int, actor: User) -> Conversation:
    """Take a conversation (with the rest of its patient's episode) from the queue by hand
    (attendants only when MANUAL_TAKE allows, and within their capacity)."""
    async with ctx.db.session() as session:
        conversation, episode = await _lock_episode(session, conversation_id)
        if actor.role == Role.ATTENDANT and conversation.assigned_attendant_id not in (
            None,
            actor.id,
        ):
            raise NotOwner(conversation_id)
        if conversation.status != ConversationStatus.OPEN or conversation.owner != Owner.QUEUED:
            raise NotQueued(conversation_id)
        if any(m.owner == Owner.ATTENDANT and m.assigned_attendant_id != actor.id for m in episode):
            # A colleague serves the patient on another channel: distribution joins this
            # conversation to them rather than split the patient.
            raise NotQueued(conversation_id)
        if actor.role == Role.ATTENDANT and not ctx.settings.manual_take:
            raise ManualTakeDisabled(actor.id)
        if actor.role != Role.ATTENDANT and not is_manager(actor):
            raise Forbidden(actor.id)
        receiver = await _lock_receiver(
            session,
            actor.id,
            conversation.patient_id,
            presences=(Presence.ONLINE, Presence.PAUSED),
        )
        events = await _move_episode(session, episode, HandoffKind.TAKEN, receiver, actor=actor)
    await _publish(ctx, events)
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
        conversation, episode = await _lock_episode(session, conversation_id)
        if is_manager(actor):
            if conversation.status != ConversationStatus.OPEN:
                raise ConversationClosed(conversation_id)
            if conversation.owner == Owner.BOT:
                raise NotWithPerson(conversation_id)
        else:
            _check_may_act(conversation, actor)
        if to_attendant_id == conversation.assigned_attendant_id:
            raise AttendantUnavailable(to_attendant_id)
        receiver = await _lock_receiver(
            session, to_attendant_id, conversation.patient_id, presences=(Presence.ONLINE,)
        )
        kind = HandoffKind.REASSIGNED if is_manager(actor) else HandoffKind.TRANSFERRED
        events = await _move_episode(session, episode, kind, receiver, actor=actor)
    await _announce_new_owner(ctx, events, conversation_id, receiver)
    await distribute(ctx)  # the previous attendant may have a free slot now
    return conversation


async def reassign(
    ctx: Context, conversation_id: int, manager: User, to_attendant_id: int | None
) -> Conversation:
    """A manager moves a conversation to another attendant, or back to the queue (None)."""
    _check_manager(manager)
    if to_attendant_id is not None:
        return await transfer(ctx, conversation_id, manager, to_attendant_id)
    if not await requeue(ctx, conversation_id, reason="manager", actor=manager):
        raise NotWithPerson(conversation_id)
    await after_requeue(ctx, [conversation_id])
    async with ctx.db.session() as session:
        return await session.get(Conversation, conversation_id)


async def take_over(ctx: Context, conversation_id: int, manager: User) -> Conversation:
    """Barge-in: a manager becomes the owner of the conversation (and of the rest of its
    patient's episode), whoever had it."""
    _check_manager(manager)
    async with ctx.db.session() as session:
        conversation, episode = await _lock_episode(session, conversation_id)
        if conversation.status != ConversationStatus.OPEN:
            raise ConversationClosed(conversation_id)
        if conversation.owner == Owner.BOT:
            raise NotWithPerson(conversation_id)
        events = await _move_episode(
            session, episode, HandoffKind.TAKEN_OVER, manager, actor=manager
        )
    if events:
        await _announce_new_owner(ctx, events, conversation_id, manager)
        await distribute(ctx)
    return conversation


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
        conversation, episode = await _lock_episode(session, conversation_id)
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
                await _transition(
                    session,
                    member,
                    HandoffKind.REQUEUED,
                    actor=actor,
                    from_attendant_id=previous,
                    reason=reason,
                )
            )
    log.info("conversation %s back in the queue (%s)", conversation_id, reason)
    await _publish(ctx, events)
    return True


async def after_requeue(ctx: Context, conversation_ids: list[int]) -> None:
    """Redistribute, then tell each patient still waiting where they stand."""
    assigned = {a.conversation.id for a in await distribute(ctx)}
    for conversation_id in conversation_ids:
        if conversation_id not in assigned:
            await _tell_queue_position(ctx, conversation_id)


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


async def set_priority(
    ctx: Context, conversation_id: int, manager: User, priority: Priority
) -> Conversation:
    """A manager raises (or lowers) a conversation's priority; the queue reorders at once."""
    _check_manager(manager)
    async with ctx.db.session() as session:
        conversation = await _lock_conversation(session, conversation_id)
        if conversation.status != ConversationStatus.OPEN:
            raise ConversationClosed(conversation_id)
        if conversation.priority == int(priority):
            return conversation
        conversation.priority = int(priority)
        event = await _transition(
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


# ---------------------------------------------------------------------------------------------
# Talking to the patient, notes and typed actions


async def _linked_conversation(
    ctx: Context, session: AsyncSession, source: Conversation, channel: str, actor: User
) -> tuple[Conversation, dict[str, Any] | None]:
    """The patient's open conversation on another channel, joined to the attendant who holds
    `source` (opened if needed), so the patient's answer there reaches the same person."""
    if channel not in ctx.senders:
        raise ChannelUnavailable(channel)
    query = (
        select(ChannelIdentity)
        .where(ChannelIdentity.patient_id == source.patient_id, ChannelIdentity.channel == channel)
        .order_by(ChannelIdentity.last_inbound_at.desc().nulls_last(), ChannelIdentity.id.desc())
        .limit(1)
    )
    identity = (await session.execute(query)).scalar_one_or_none()
    if identity is None:
        raise ChannelUnavailable(channel)
    opened = await open_conversation(session, identity)
    target = await _lock_conversation(session, opened.id)
    if target.owner == Owner.ATTENDANT:
        if target.assigned_attendant_id != source.assigned_attendant_id:
            raise ChannelBusy(target.id)
        return target, None
    return target, await _join(session, target, source, actor=actor)


async def _join(
    session: AsyncSession,
    conversation: Conversation,
    episode: Conversation,
    *,
    actor: User | None = None,
) -> dict[str, Any]:
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
        _give_to(conversation, holder, now)
    return await _transition(
        session,
        conversation,
        HandoffKind.LINKED,
        actor=actor,
        to_attendant_id=holder,
        from_conversation_id=episode.id,
    )


async def _with_person_elsewhere(
    session: AsyncSession, conversation: Conversation
) -> Conversation | None:
    """The patient's other open conversation in the queue or with a person, if any."""
    query = (
        select(Conversation)
        .where(
            Conversation.patient_id == conversation.patient_id,
            Conversation.id != conversation.id,
            Conversation.status == ConversationStatus.OPEN,
            Conversation.owner != Owner.BOT,
        )
        .order_by(Conversation.id)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def join_open_episode(ctx: Context, conversation_id: int) -> bool:
    """Before a patient's message goes to the bot: if the patient is already waiting for or
    talking to a person on another channel, this conversation joins that episode (same
    attendant, or the queue at the same place) and the bot stays out. True when it joined."""
    async with ctx.db.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        # A cheap read first: almost every message to the bot has no such episode.
        if (
            conversation.owner != Owner.BOT
            or await _with_person_elsewhere(session, conversation) is None
        ):
            return False
    async with ctx.db.session() as session:
        conversation, _ = await _lock_episode(session, conversation_id)
        episode = await _with_person_elsewhere(session, conversation)
        if conversation.owner != Owner.BOT or episode is None:
            return conversation.owner != Owner.BOT
        event = await _join(session, conversation, episode)
    await ctx.bus.publish(event)
    if conversation.owner == Owner.QUEUED:
        await distribute(ctx)
    return True


async def reply(
    ctx: Context, conversation_id: int, actor: User, text: str, *, channel: str | None = None
) -> Message:
    """A staff message to the patient: on the conversation's channel, or on another channel
    linked to the patient (into the patient's conversation there)."""
    linked_event = None
    async with ctx.db.session() as session:
        # The whole patient is locked: a reply on another channel locks that conversation too.
        conversation, _ = await _lock_episode(session, conversation_id)
        _check_may_act(conversation, actor)
        if conversation.owner != Owner.ATTENDANT:
            raise NotWithPerson(conversation_id)
        target = conversation
        if channel and channel != conversation.channel:
            target, linked_event = await _linked_conversation(
                ctx, session, conversation, channel, actor
            )
        now = utcnow()
        for stamped in {conversation, target}:
            stamped.first_human_reply_at = stamped.first_human_reply_at or now
        # Recorded inside the lock, so the no-answer timer never requeues a conversation
        # whose reply is on its way.
        message = await record_outbound(
            session, target, text=text, author_kind=AuthorKind.ATTENDANT, author_id=actor.id
        )
        identity = await session.get(ChannelIdentity, target.channel_identity_id)
    if linked_event is not None:
        await ctx.bus.publish(linked_event)
    await ctx.bus.publish(message_event(message, target))
    await deliver(ctx, message, identity, target)
    return message


async def add_note(ctx: Context, conversation_id: int, actor: User, text: str) -> Message:
    """An internal note (by the attendant) or whisper (by a manager): staff see it in the
    timeline, the patient never does."""
    async with ctx.db.session() as session:
        conversation = await _lock_conversation(session, conversation_id)
        _check_may_act(conversation, actor)
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


# An action's effect outside the conversation (e.g. confirming the appointment); it returns
# details to keep with the recorded action.
ActionEffect = Callable[[Context, Conversation, User, dict[str, Any]], Awaitable[dict[str, Any]]]


async def _no_effect(
    _ctx: Context, _conversation: Conversation, _actor: User, _details: dict[str, Any]
) -> dict[str, Any]:
    return {}


# Appointment changes made from the workspace are recorded with this channel.
STAFF_CHANNEL = "staff"
AppointmentChange = Callable[[Context, int, User, dict[str, Any]], Awaitable[dict[str, Any]]]


def _on_appointment(change: AppointmentChange) -> ActionEffect:
    """An effect on one of the conversation's patient's appointments (issue 6's agenda)."""

    async def effect(
        ctx: Context, conversation: Conversation, actor: User, details: dict[str, Any]
    ) -> dict[str, Any]:
        appointment_id = details["appointment_id"]
        async with ctx.db.session() as session:
            appointment = await session.get(Appointment, appointment_id)
        if appointment is None or appointment.patient_id != conversation.patient_id:
            raise NotFound(appointment_id)
        try:
            return await change(ctx, appointment_id, actor, details)
        except appointments.SchedulingError as refused:
            raise Refused(refused.code) from None
        except ReminderNotSent as refused:
            raise Refused(f"reminder.reason.{refused.reason}") from None

    return effect


async def _confirm(ctx: Context, appointment_id: int, actor: User, _: dict) -> dict[str, Any]:
    appointment = await appointments.confirm(
        ctx.db, appointment_id, channel=STAFF_CHANNEL, actor_id=actor.id
    )
    return {"status": str(appointment.status)}


async def _cancel(ctx: Context, appointment_id: int, actor: User, details: dict) -> dict[str, Any]:
    appointment = await appointments.cancel(
        ctx.db,
        appointment_id,
        channel=STAFF_CHANNEL,
        actor_id=actor.id,
        reason=details.get("note", ""),
    )
    return {"status": str(appointment.status)}


def _attendance(attended: bool) -> AppointmentChange:
    async def mark(ctx: Context, appointment_id: int, actor: User, _: dict) -> dict[str, Any]:
        appointment = await appointments.mark_attendance(
            ctx.db, appointment_id, attended=attended, actor_id=actor.id, channel=STAFF_CHANNEL
        )
        return {"status": str(appointment.status)}

    return mark


async def _remind(ctx: Context, appointment_id: int, actor: User, _: dict) -> dict[str, Any]:
    message = await send_now(ctx, appointment_id, actor_id=actor.id)
    return {"message_id": message.id, "channel": message.channel}


def _slot_of(details: dict[str, Any]) -> tuple[int, datetime]:
    doctor_id, starts_at = details.get("doctor_id"), details.get("starts_at")
    try:
        moment = datetime.fromisoformat(starts_at) if isinstance(starts_at, str) else None
    except ValueError:
        moment = None
    if not isinstance(doctor_id, int) or moment is None or moment.tzinfo is None:
        raise BadSlot()
    return doctor_id, moment


def _booked(appointment: Appointment) -> dict[str, Any]:
    """What the timeline shows of a booking (the appointment's doctor must be loaded)."""
    return {
        "appointment_id": appointment.id,
        "doctor_id": appointment.doctor_id,
        "doctor_name": appointment.doctor.name,
        "starts_at": appointment.starts_at.isoformat(),
        "status": str(appointment.status),
    }


async def _book(
    ctx: Context, conversation: Conversation, actor: User, details: dict[str, Any]
) -> dict[str, Any]:
    """Book for the conversation's patient, as the bot and the portal do."""
    doctor_id, starts_at = _slot_of(details)
    try:
        appointment = await appointments.book(
            ctx.db,
            patient_id=conversation.patient_id,
            doctor_id=doctor_id,
            starts_at=starts_at,
            channel=STAFF_CHANNEL,
            actor_id=actor.id,
        )
    except appointments.SchedulingError as refused:
        raise Refused(refused.code) from None
    return _booked(appointment)


async def _reschedule(
    ctx: Context, appointment_id: int, actor: User, details: dict
) -> dict[str, Any]:
    doctor_id, starts_at = _slot_of(details)
    new = await appointments.reschedule(
        ctx.db,
        appointment_id,
        starts_at=starts_at,
        doctor_id=doctor_id,
        channel=STAFF_CHANNEL,
        actor_id=actor.id,
    )
    return {**_booked(new), "appointment_id": appointment_id, "new_appointment_id": new.id}


@dataclass(frozen=True)
class ReceptionAction:
    effect: ActionEffect = _no_effect
    needs_appointment: bool = False
    # Needs a slot picked from slot search (`doctor_id`, `starts_at`): the workspace offers
    # it through its booking panel rather than as a plain button.
    needs_slot: bool = False


def _appointment_action(change: AppointmentChange, *, needs_slot: bool = False) -> ReceptionAction:
    return ReceptionAction(_on_appointment(change), needs_appointment=True, needs_slot=needs_slot)


# The reception's buttons, by the typed kind stored in `attendant_actions.kind`.
ACTIONS: dict[str, ReceptionAction] = {
    "appointment_booked": ReceptionAction(_book, needs_slot=True),
    "appointment_rescheduled": _appointment_action(_reschedule, needs_slot=True),
    "appointment_confirmed": _appointment_action(_confirm),
    "reminder_sent": _appointment_action(_remind),
    "appointment_cancelled": _appointment_action(_cancel),
    "attended": _appointment_action(_attendance(True)),
    "no_show": _appointment_action(_attendance(False)),
    "exams_delivered": ReceptionAction(),
    "insurance_authorized": ReceptionAction(),
    "payment_received": ReceptionAction(),
    "documents_requested": ReceptionAction(),
}


async def record_action(
    ctx: Context,
    conversation_id: int,
    actor: User,
    kind: str,
    details: dict[str, Any] | None = None,
) -> AttendantAction:
    """Perform a reception action (Confirmar consulta, Exames entregues...) and record it,
    typed, in the conversation's timeline."""
    action_type = ACTIONS.get(kind)
    details = dict(details or {})
    if action_type is None or (action_type.needs_appointment and "appointment_id" not in details):
        raise UnknownAction(kind)
    async with ctx.db.session() as session:
        conversation = await _lock_conversation(session, conversation_id)
        _check_may_act(conversation, actor)
    details.update(await action_type.effect(ctx, conversation, actor, details))
    async with ctx.db.session() as session:
        action = AttendantAction(
            conversation_id=conversation.id,
            patient_id=conversation.patient_id,
            actor_id=actor.id,
            kind=kind,
            details=details,
            created_at=utcnow(),
        )
        session.add(action)
        await session.flush()
        patient = await session.get(User, conversation.patient_id)
        event = {
            "type": "action",
            "action": action_view(action),
            "conversation": conversation_event(conversation, patient.name)["conversation"],
        }
    await ctx.bus.publish(event)
    return action


# ---------------------------------------------------------------------------------------------
# Resolution and hand-back


async def resolve(ctx: Context, conversation_id: int, actor: User) -> Conversation:
    """Close the human episode (the patient's conversations with a person on every channel)
    and hand the patient back to the bot once (which then asks how it went). The hand-back
    runs only after the resolution committed; if the assistant cannot be reached the
    resolution stands and the worker retries the hand-back."""
    async with ctx.db.session() as session:
        conversation, episode = await _lock_episode(session, conversation_id)
        _check_may_act(conversation, actor)
        now = utcnow()
        events = []
        for member in episode:
            previous = member.assigned_attendant_id
            member.owner = Owner.BOT
            member.status = ConversationStatus.CLOSED
            member.resolved_at = now
            member.closed_at = now
            events.append(
                await _transition(
                    session, member, HandoffKind.RESOLVED, actor=actor, from_attendant_id=previous
                )
            )
    await _publish(ctx, events)
    # The bot takes the patient back (`listen`): once for the conversations resolved together.
    resolved = {"patient_id": conversation.patient_id, "conversation_ids": [m.id for m in episode]}
    await ctx.bus.publish({"type": RESOLVED, **resolved})
    await distribute(ctx)
    return conversation


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


# ---------------------------------------------------------------------------------------------
# Presence


async def set_presence(
    ctx: Context, attendant: User, presence: Presence, *, reason: str = "offline"
) -> None:
    """Online receives conversations; pausa keeps the current ones and receives none; offline
    sends the current ones back to the queue."""
    now = utcnow()
    async with ctx.db.session() as session:
        profile = await session.get(AttendantProfile, attendant.id, with_for_update=True)
        if profile is None:
            raise Forbidden(attendant.id)
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


# ---------------------------------------------------------------------------------------------
# What the handoff listens to


def listen(ctx: Context) -> None:
    """Subscribe the handoff's reactions to the process's event bus: the bot asked for a
    person; a person finished and the bot takes the patient back."""
    bus: EventBus = ctx.bus

    async def on_bot_handoff(event: dict[str, Any]) -> None:
        priority = Priority[str(event.get("priority", "normal")).upper()]
        await request_handoff(
            ctx, event["conversation_id"], reason=str(event["reason"]), priority=priority
        )

    async def on_resolved(event: dict[str, Any]) -> None:
        await hand_back(ctx, event["patient_id"], event["conversation_ids"])

    bus.listen(on_bot_handoff, frozenset({BOT_HANDOFF}))
    bus.listen(on_resolved, frozenset({RESOLVED}))
