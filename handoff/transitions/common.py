"""What every transition shares: its refusals, locking the patient's episode, checking who
acts, logging the change and announcing it.

A transition opens one transaction, locks what it changes with `lock_episode` (or
`lock_conversation`) and, for whoever receives conversations, `lock_receiver`; re-checks what
it read; logs each change with `record_transition` before committing; and publishes the live
events only after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, SQLColumnExpression, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import access
from core.context import Context
from core.errors import ClinicError, Forbidden, NotFound
from core.events import conversation_event
from handoff import facts
from models import (
    AttendantProfile,
    Conversation,
    ConversationStatus,
    HandoffEvent,
    HandoffKind,
    Owner,
    Presence,
    User,
    utcnow,
)
from models.views import handoff_event_view

# A live event, as the bus carries it.
Event = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# What a transition refuses


class TransitionError(ClinicError):
    """A transition that is not allowed. Every refusal of the handoff is one; it is a conflict
    (409, `error.conflict`) unless it is also one of core.errors' refusals, whose status it
    takes (so this class sets no `code` or `status` of its own)."""


class ConversationNotFound(TransitionError, NotFound):
    pass


class StaffOnly(TransitionError, Forbidden):
    """Only serving staff (attendants, managers, admins) act in conversations."""


class ManagersOnly(TransitionError, Forbidden):
    """Supervision (reassign, take over, priorities) is for managers and admins."""


class NotOwner(TransitionError, Forbidden):
    code = "error.not_owner"


class ConversationClosed(TransitionError):
    code = "error.conversation_closed"


class NotWithPerson(TransitionError):
    code = "error.not_with_person"


class AttendantUnavailable(TransitionError):
    code = "error.attendant_unavailable"


def check_may_act(conversation: Conversation, actor: User) -> None:
    """Refuse unless `actor` may act in the conversation (core.access): closed first, then
    who they are."""
    if conversation.status != ConversationStatus.OPEN:
        raise ConversationClosed()
    if access.may_act_in_conversation(actor, conversation):
        return
    if access.is_attendant(actor):
        raise NotOwner()
    raise StaffOnly()


def check_manager(actor: User) -> None:
    if not access.is_manager(actor):
        raise ManagersOnly()


# ---------------------------------------------------------------------------------------------
# Locking


async def lock_conversation(session: AsyncSession, conversation_id: int) -> Conversation:
    query = select(Conversation).where(Conversation.id == conversation_id).with_for_update()
    conversation = (await session.execute(query)).scalar_one_or_none()
    if conversation is None:
        raise ConversationNotFound()
    return conversation


async def lock_episode(
    session: AsyncSession, conversation_id: int
) -> tuple[Conversation, list[Conversation]]:
    """Lock the conversation and every open conversation of its patient, in id order (one
    order for every transition, so two never wait on each other), read fresh. Returns it with
    the conversations that move with it: its episode when it is with a person or in the
    queue, else just itself."""
    patient_query = select(Conversation.patient_id).where(Conversation.id == conversation_id)
    patient_id = (await session.execute(patient_query)).scalar_one_or_none()
    if patient_id is None:
        raise ConversationNotFound()
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


def patients_held(attendant_id: int | SQLColumnExpression[int]) -> Select[int]:
    """How many patients an attendant (an id, or a column to correlate) is serving now."""
    return select(func.count(distinct(Conversation.patient_id))).where(
        Conversation.assigned_attendant_id == attendant_id,
        Conversation.owner == Owner.ATTENDANT,
        Conversation.status == ConversationStatus.OPEN,
    )


async def has_room(session: AsyncSession, profile: AttendantProfile, patient_id: int) -> bool:
    """Counted after the profile row is locked, so no concurrent assignment is missed. A
    patient the attendant already serves takes no new slot."""
    if await access.serves_patient(session, profile.user_id, patient_id):
        return True
    held = (await session.execute(patients_held(profile.user_id))).scalar_one()
    return held < profile.capacity


async def lock_receiver(
    session: AsyncSession, user_id: int, patient_id: int, *, presences: tuple[Presence, ...]
) -> User:
    """Lock the staff member who is about to receive a conversation and check they may:
    active serving staff in one of `presences` and, for attendants, with a free slot."""
    user = await session.get(User, user_id)
    if user is None or not access.may_receive_conversations(user):
        raise AttendantUnavailable()
    profile = await session.get(
        AttendantProfile, user_id, with_for_update=True, populate_existing=True
    )
    if profile is None or profile.presence not in presences:
        raise AttendantUnavailable()
    if access.is_attendant(user):
        if not await has_room(session, profile, patient_id):
            raise AttendantUnavailable()
        profile.last_assigned_at = utcnow()
        profile.version += 1
    return user


# ---------------------------------------------------------------------------------------------
# Bookkeeping and announcing


async def record_transition(
    session: AsyncSession,
    conversation: Conversation,
    kind: HandoffKind,
    *,
    actor: User | None = None,
    from_attendant_id: int | None = None,
    to_attendant_id: int | None = None,
    **details: Any,
) -> Event:
    """Log the transition, and the handoff facts it changes, in the same transaction and
    return the live event announcing it."""
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
    await facts.note_transition(session, row)
    patient = await session.get_one(User, conversation.patient_id)
    return conversation_event(conversation, patient.name, change=handoff_event_view(row))


def give_to(conversation: Conversation, attendant_id: int, now: datetime) -> None:
    conversation.owner = Owner.ATTENDANT
    conversation.assigned_attendant_id = attendant_id
    conversation.assigned_at = now


async def publish(ctx: Context, events: Iterable[Event]) -> None:
    """After the commit: the live events, in the order the changes were made."""
    for event in events:
        await ctx.bus.publish(event)
