"""Who may read or act on what: the one place that decides it, for every process.

The rules answer yes or no over the models; the caller raises its own refusal (a
`core.errors.Forbidden`, or a subclass that says why). Nothing here writes, and only
`serves_patient` (and what asks it) reads the database.

- Managers and admins read and act on every conversation and every appointment.
- An attendant reads a conversation only while it is open and in the queue or assigned to
  them, and acts in it (replies, notes, transfers, resolves, reception actions) only while it
  is open and assigned to them. From the queue they take one that is nobody else's.
- Triage: an attendant reading a queued conversation sees only that conversation (the current
  episode) and its handoff reason; the patient's whole history across channels, and their
  appointments, only once one of the patient's open conversations is theirs
  (`sees_whole_history`, the one rule for the messages and the appointments endpoints).
  Managers and admins see every history (supervision; their reads are audited like all).
- Managers and admins manage the labels and canned responses; serving staff put labels on
  the conversations they act in, managers on any conversation.
- Search and past conversations (read-only transcripts): managers and admins find every
  patient; an attendant only the patients they serve or have served (a conversation of the
  patient was ever assigned to them), never one they only saw in the queue
  (`searchable_patients`).
- A staff member acts on the appointments of a patient whose whole history they see, and
  reads and edits that patient's card (record, preferences, notes). A patient acts only on
  their own.
- Only managers and admins merge two patients' records.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Conversation,
    ConversationStatus,
    HandoffEvent,
    Owner,
    Role,
    SecondFactorPolicy,
    User,
)

MANAGER_ROLES = frozenset({Role.MANAGER, Role.ADMIN})


def is_manager(user: User) -> bool:
    """Managers and admins: they supervise, so they see and may move everything."""
    return user.role in MANAGER_ROLES


def is_attendant(user: User) -> bool:
    return user.role == Role.ATTENDANT


def is_admin(user: User) -> bool:
    """Admins alone manage staff accounts and the clinic profile."""
    return user.role == Role.ADMIN


def must_have_second_factor(user: User, policy: SecondFactorPolicy) -> bool:
    """Whether the clinic's policy makes this account log in with a second factor: staff
    only (patients never), managers and admins by default, every staff member or nobody as
    the admin chooses. Anyone else may still enrol."""
    if not user.is_staff or policy == SecondFactorPolicy.NOBODY:
        return False
    return policy == SecondFactorPolicy.ALL_STAFF or is_manager(user)


def may_merge_patients(user: User) -> bool:
    """Joining two patients' records is irreversible: managers and admins only."""
    return is_manager(user)


def is_serving_staff(user: User) -> bool:
    """Attendants, managers and admins: who may hold a conversation with a patient."""
    return is_attendant(user) or is_manager(user)


def may_receive_conversations(user: User) -> bool:
    """Whom a conversation may be given (by distribution, a transfer or a take): active
    serving staff. Presence and capacity are the handoff's to check."""
    return user.is_active and is_serving_staff(user)


def _assigned_to(conversation: Conversation, user: User) -> bool:
    return conversation.owner == Owner.ATTENDANT and conversation.assigned_attendant_id == user.id


def may_read_conversation(user: User, conversation: Conversation) -> bool:
    """What the attendant's lists show: the queue and what is with them now. A resolved or
    moved conversation leaves their workspace at once, and so does their access to its
    patient's history. Managers read every conversation."""
    if is_manager(user):
        return True
    if not is_attendant(user) or conversation.status != ConversationStatus.OPEN:
        return False
    return conversation.owner == Owner.QUEUED or _assigned_to(conversation, user)


def may_act_in_conversation(user: User, conversation: Conversation) -> bool:
    """Managers act in any open conversation; attendants only in the open ones assigned to
    them."""
    if conversation.status != ConversationStatus.OPEN:
        return False
    return is_manager(user) or (is_attendant(user) and _assigned_to(conversation, user))


def may_manage_labels(user: User) -> bool:
    """The clinic's labels and canned responses are managed by managers and admins."""
    return is_manager(user)


def may_label_conversation(user: User, conversation: Conversation) -> bool:
    """Labels go on a conversation from whoever acts in it; managers label any (a resolved
    one too, while reviewing)."""
    return is_manager(user) or may_act_in_conversation(user, conversation)


def may_take_from_queue(user: User, conversation: Conversation) -> bool:
    """Taking by hand: a manager any conversation; an attendant one not set aside for a
    colleague. (Whether it is still queued, and MANUAL_TAKE, are the handoff's to check.)"""
    if is_manager(user):
        return True
    return is_attendant(user) and conversation.assigned_attendant_id in (None, user.id)


def serving(attendant_id: int, patient_id: int) -> ColumnElement[bool]:
    """The condition "one of this patient's open conversations is assigned to this
    attendant", for a query."""
    return exists().where(
        and_(
            Conversation.assigned_attendant_id == attendant_id,
            Conversation.patient_id == patient_id,
            Conversation.owner == Owner.ATTENDANT,
            Conversation.status == ConversationStatus.OPEN,
        )
    )


async def serves_patient(session: AsyncSession, attendant_id: int, patient_id: int) -> bool:
    """Whether the attendant serves this patient now (on any channel)."""
    return bool((await session.execute(select(serving(attendant_id, patient_id)))).scalar())


async def sees_whole_history(session: AsyncSession, user: User, patient_id: int) -> bool:
    """Whether the user sees the patient's whole history — every channel's messages and
    their appointments — rather than at most the episode in front of them: managers always,
    an attendant only while serving the patient (not while triaging the queue), a patient
    their own."""
    if is_manager(user):
        return True
    if is_attendant(user):
        return await serves_patient(session, user.id, patient_id)
    return user.role == Role.PATIENT and user.id == patient_id


async def may_act_on_appointments_of(session: AsyncSession, user: User, patient_id: int) -> bool:
    """Acting on appointments takes seeing them: the same people as `sees_whole_history`."""
    return await sees_whole_history(session, user, patient_id)


async def may_edit_patient(session: AsyncSession, user: User, patient_id: int) -> bool:
    """Reading and editing the patient's card (record, preferences, notes): staff who see the
    patient's whole history."""
    return user.is_staff and await sees_whole_history(session, user, patient_id)


async def may_read_file(
    session: AsyncSession, user: User, patient_id: int, conversation: Conversation | None
) -> bool:
    """A file in a patient's history: the patient themselves; staff who may read the
    conversation that carries it, or who see the patient's whole history."""
    if user.role == Role.PATIENT:
        return user.id == patient_id
    if conversation is not None and may_read_conversation(user, conversation):
        return True
    return is_serving_staff(user) and await sees_whole_history(session, user, patient_id)


def readable_conversations(user: User) -> ColumnElement[bool]:
    """`may_read_conversation` as a query condition, for lists of conversations."""
    if is_manager(user):
        return true()
    if not is_attendant(user):
        return false()
    return and_(
        Conversation.status == ConversationStatus.OPEN,
        or_(
            Conversation.owner == Owner.QUEUED,
            and_(
                Conversation.owner == Owner.ATTENDANT,
                Conversation.assigned_attendant_id == user.id,
            ),
        ),
    )


def searchable_patients(user: User, patient_id: ColumnElement[int]) -> ColumnElement[bool]:
    """Whether the search and the past conversations show this patient (`patient_id`, a
    column of the query) to the user: managers every patient, an attendant those a
    conversation of whom was ever assigned to them (every assignment is a handoff event
    naming who got it), nobody else any."""
    if is_manager(user):
        return true()
    if not is_attendant(user):
        return false()
    return exists().where(
        HandoffEvent.to_attendant_id == user.id, HandoffEvent.patient_id == patient_id
    )
