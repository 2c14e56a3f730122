"""A manager merges two records of one person: after seeing both cards side by side, they
choose which record stays (the target) and confirm; everything of the other (the source) —
conversations and messages, channel identities, appointments and their reminders, consents,
reception actions — moves to the target in one transaction, and the source is kept,
deactivated and marked merged (`User.merged_into_id`), so it can no longer log in and
nothing that points to it breaks. There is no undo: the request must say it was confirmed.

Conflicts are settled, and the manager is told how:
- open conversations: the patient goes on in one (handoff.transitions.resolution
  `keep_one_open`), the others close;
- logins: when both records log in, the target's login stays and the source's ends; when only
  the source logs in, its login moves to the target if its e-mail does (the target has none),
  else it ends;
- contacts the target lacks are taken from the source (messaging.identities
  `merge_patients`), the target's own are kept.

The merge is recorded three ways: a `PatientMerge` row (what moved), the audit log, and an
entry in each record's timeline that says, in Portuguese, what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.auth import close_sessions
from core import access, audit
from core.audit import AuditAction
from core.catalog import t
from core.context import Context
from core.errors import BadRequest, Conflict, Forbidden, NotFound
from core.events import conversation_event
from handoff.transitions.common import Event, publish
from handoff.transitions.queueing import distribute
from handoff.transitions.resolution import keep_one_open
from messaging.identities import merge_patients
from models import (
    AccountToken,
    Appointment,
    AttendantAction,
    ChannelIdentity,
    Consent,
    Conversation,
    ConversationStatus,
    Message,
    PatientMerge,
    Role,
    User,
    utcnow,
)
from models.views import action_view

# The timeline entry each record gets (`done.patient_merged` in the catalog).
MERGED_ACTION = "patient_merged"
CountedModel = (
    type[Conversation] | type[Message] | type[ChannelIdentity] | type[Appointment] | type[Consent]
)
COUNTED: dict[str, CountedModel] = {
    "conversations": Conversation,
    "messages": Message,
    "identities": ChannelIdentity,
    "appointments": Appointment,
    "consents": Consent,
}


class ManagersMerge(Forbidden):
    code = "card.error.managers_merge"


class Unconfirmed(BadRequest):
    code = "card.error.confirm_merge"


class SamePatient(BadRequest):
    code = "card.error.same_patient"


class NotMergeable(Conflict):
    code = "card.error.not_mergeable"


class Login(StrEnum):
    """What became of the records' logins."""

    NONE = "none"  # the source had none
    MOVED = "moved"  # the source's login is the target's now
    TARGET_KEPT = "target_kept"  # both had one: the target's stays, the source's ended
    ENDED = "ended"  # only the source had one, and the target keeps its own e-mail


@dataclass(frozen=True)
class Merged:
    merge_id: int
    source_id: int
    target_id: int
    moved: dict[str, int]
    kept_conversation_id: int | None
    closed_conversation_ids: list[int]
    login: Login


async def merge_records(
    ctx: Context,
    actor: User,
    *,
    source_id: int,
    target_id: int,
    confirmed: bool,
    ip: str | None,
) -> Merged:
    if not access.may_merge_patients(actor):
        raise ManagersMerge()
    if source_id == target_id:
        raise SamePatient()
    if not confirmed:
        raise Unconfirmed()
    async with ctx.db.session() as session:
        source, target = await _lock_patients(session, source_id, target_id)
        moved = {name: await _count(session, model, source_id) for name, model in COUNTED.items()}
        target_open = await _open_conversations(session, target_id)
        login = await _settle_logins(session, source, target)
        await merge_patients(session, source=source, target=target)
        await close_sessions(session, source_id)
        await session.execute(
            delete(AccountToken).where(
                AccountToken.user_id == source_id, AccountToken.used_at.is_(None)
            )
        )
        kept, closed = await keep_one_open(session, target_id, actor, prefer=target_open)
        merge = PatientMerge(
            source_id=source_id,
            target_id=target_id,
            actor_id=actor.id,
            details={"moved": moved, "login": str(login)},
            created_at=utcnow(),
        )
        session.add(merge)
        await session.flush()
        events = [*closed, *await _explain(session, actor, source, target, kept)]
        await audit.record(
            session,
            actor,
            AuditAction.PATIENTS_MERGED,
            patient_id=target_id,
            ip=ip,
            merged_patient_id=source_id,
            merge_id=merge.id,
            moved=moved,
            login=str(login),
        )
    await publish(ctx, events)
    if closed:
        await distribute(ctx)
    return Merged(
        merge_id=merge.id,
        source_id=source_id,
        target_id=target_id,
        moved=moved,
        kept_conversation_id=kept.id if kept else None,
        closed_conversation_ids=[e["conversation"]["id"] for e in closed],
        login=login,
    )


async def _lock_patients(
    session: AsyncSession, source_id: int, target_id: int
) -> tuple[User, User]:
    """Both records, locked in id order, if both can be merged: active patients, neither
    merged nor erased."""
    query = (
        select(User)
        .where(User.id.in_([source_id, target_id]))
        .order_by(User.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = {user.id: user for user in (await session.execute(query)).scalars()}
    if len(found) != 2 or any(user.role != Role.PATIENT for user in found.values()):
        raise NotFound("card.error.not_a_patient")
    if any(
        not user.is_active or user.merged_into_id is not None or user.erased_at is not None
        for user in found.values()
    ):
        raise NotMergeable()
    return found[source_id], found[target_id]


async def _count(session: AsyncSession, model: CountedModel, patient_id: int) -> int:
    query = select(func.count()).select_from(model).where(model.patient_id == patient_id)
    return int((await session.execute(query)).scalar_one())


async def _open_conversations(session: AsyncSession, patient_id: int) -> list[int]:
    query = select(Conversation.id).where(
        Conversation.patient_id == patient_id, Conversation.status == ConversationStatus.OPEN
    )
    return list((await session.execute(query)).scalars())


async def _settle_logins(session: AsyncSession, source: User, target: User) -> Login:
    """Before the contacts move: whose login the merged record keeps."""
    if source.password_hash is None:
        return Login.NONE
    if target.password_hash is not None:
        outcome = Login.TARGET_KEPT
    elif target.email is None and source.email is not None:
        target.password_hash = source.password_hash  # the e-mail follows in merge_patients
        outcome = Login.MOVED
    else:
        outcome = Login.ENDED
    source.password_hash = None
    return outcome


async def _explain(
    session: AsyncSession,
    actor: User,
    source: User,
    target: User,
    kept: Conversation | None,
) -> list[Event]:
    """A timeline entry in each record (the target's in the conversation that goes on); the
    live event that shows the target's to the staff who have it open."""
    details = {"source_id": source.id, "target_id": target.id}
    now = utcnow()
    into_target = AttendantAction(
        conversation_id=kept.id if kept else None,
        patient_id=target.id,
        actor_id=actor.id,
        kind=MERGED_ACTION,
        details={**details, "note": t("card.merge.into_target", origem=source.id)},
        created_at=now,
    )
    on_source = AttendantAction(
        patient_id=source.id,
        actor_id=actor.id,
        kind=MERGED_ACTION,
        details={**details, "note": t("card.merge.on_source", destino=target.id)},
        created_at=now,
    )
    session.add_all([into_target, on_source])
    await session.flush()
    if kept is None:
        return []
    conversation = conversation_event(kept, target.name)
    action = {
        "type": "action",
        "action": action_view(into_target),
        "conversation": conversation["conversation"],
    }
    return [conversation, action]
