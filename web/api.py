"""The staff JSON API. Every route requires a staff session (see middlewares).

Reads are scoped here (an attendant sees the queue and the conversations assigned to them,
and of a queued one only its episode: core.access) and audit-logged; every change goes
through `handoff.transitions`, which checks who may make it. Logins, failed logins and
logouts are audit-logged with the client's address.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

import handoff.presence
from core import access, audit
from core.audit import AuditAction
from core.contacts import mask_cpf
from core.context import Context
from core.errors import BadRequest, Forbidden, NotFound
from handoff.labels import labels_of
from handoff.transitions import moves, reception, resolution, talking
from models import (
    AttendantAction,
    AttendantProfile,
    AuthorKind,
    ChannelIdentity,
    Conversation,
    ConversationStatus,
    Direction,
    HandoffEvent,
    Message,
    Owner,
    Presence,
    Priority,
    User,
    utcnow,
)
from models.views import (
    action_view,
    conversation_view,
    handoff_event_view,
    message_view,
    staff_view,
)
from web.keys import CTX, client_ip, current_user, id_from

MAX_REPLY_CHARS = 4096
HISTORY_LIMIT = 500
# Managers see bot conversations too, but only recent ones: the rest is history, not work.
BOT_CONVERSATIONS_WINDOW = timedelta(hours=24)
MANAGER_LIST_LIMIT = 300


class NotJson(BadRequest):
    """A body sent as something other than JSON."""

    status = 415


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body (NotJson, or BadRequest for anything but an object)."""
    if request.content_type != "application/json":
        raise NotJson()
    body = await request.json()
    if not isinstance(body, dict):
        raise BadRequest()
    return body


def mask_phone(phone: str | None) -> str | None:
    """Only the last four digits: enough to tell numbers apart at the desk."""
    return "•" * (len(phone) - 4) + phone[-4:] if phone else None


def path_conversation_id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def me(request: web.Request) -> web.Response:
    query = (
        select(User)
        .where(User.id == current_user(request).id)
        .options(selectinload(User.attendant_profile))
    )
    async with request.app[CTX].db.session() as session:
        user = (await session.execute(query)).scalar_one()
    reception_actions = [
        {"kind": kind, "appointment": action.needs_appointment, "slot": action.needs_slot}
        for kind, action in reception.ACTIONS.items()
    ]
    return web.json_response(
        {
            **staff_view(user, audience="self"),
            "manual_take": request.app[CTX].settings.manual_take,
            "actions": reception_actions,
        }
    )


async def _waiting_counts(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    """Patient messages since the last staff reply, per conversation: what is unanswered."""
    if not ids:
        return {}
    last_reply = dict(
        (
            await session.execute(
                select(Message.conversation_id, func.max(Message.created_at))
                .where(
                    Message.conversation_id.in_(ids),
                    Message.author_kind == AuthorKind.ATTENDANT,
                    Message.internal.is_(False),
                )
                .group_by(Message.conversation_id)
            )
        ).all()
    )
    counts: dict[int, int] = defaultdict(int)
    inbound = select(Message.conversation_id, Message.created_at).where(
        Message.conversation_id.in_(ids), Message.direction == Direction.INBOUND
    )
    for conversation_id, created_at in await session.execute(inbound):
        replied = last_reply.get(conversation_id)
        if replied is None or created_at > replied:
            counts[conversation_id] += 1
    return counts


async def list_conversations(request: web.Request) -> web.Response:
    """The open conversations the user may read (core.access): an attendant's queue and
    their own; for managers, everything but bot conversations quiet for a day."""
    user = current_user(request)
    query = (
        select(Conversation, User.name)
        .join(User, User.id == Conversation.patient_id)
        .where(Conversation.status == ConversationStatus.OPEN, access.readable_conversations(user))
        .order_by(Conversation.priority.desc(), Conversation.last_message_at.desc())
    )
    if access.is_manager(user):
        query = query.where(
            or_(
                Conversation.owner != Owner.BOT,
                Conversation.last_message_at > utcnow() - BOT_CONVERSATIONS_WINDOW,
            )
        ).limit(MANAGER_LIST_LIMIT)
    async with request.app[CTX].db.session() as session:
        rows = (await session.execute(query)).all()
        waiting = await _waiting_counts(session, [c.id for c, _ in rows])
        labelled = await labels_of(session, [c.id for c, _ in rows])
        await audit.record(
            session,
            user,
            AuditAction.READ_CONVERSATION_LIST,
            ip=client_ip(request),
            patient_ids=sorted({c.patient_id for c, _ in rows}),
        )
    return web.json_response(
        [
            {
                **conversation_view(c, name),
                "waiting": waiting.get(c.id, 0),
                "labels": labelled.get(c.id, []),
            }
            for c, name in rows
        ]
    )


async def readable_conversation(request: web.Request, session: AsyncSession) -> Conversation:
    """The conversation, if `core.access` lets the user read it."""
    user = current_user(request)
    conversation = await session.get(Conversation, path_conversation_id(request))
    if conversation is None:
        raise NotFound()
    if not access.may_read_conversation(user, conversation):
        raise Forbidden("error.not_owner")
    return conversation


async def history_entries(
    session: AsyncSession, patient_id: int, *, episode: int | None, with_csat: bool
) -> list[dict[str, Any]]:
    """The patient's whole history on every channel, or only the conversation `episode`:
    messages, transitions and reception actions, oldest first; with `with_csat` (managers),
    each resolution carries the satisfaction score the patient gave it."""

    def scoped(model: type[Message] | type[HandoffEvent] | type[AttendantAction]) -> Any:
        if episode is None:
            return model.patient_id == patient_id
        return model.conversation_id == episode

    query = (
        select(Message)
        .where(scoped(Message))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(HISTORY_LIMIT)
    )
    messages = list(reversed((await session.execute(query)).scalars().all()))
    since = messages[0].created_at if messages else utcnow()
    entries = [{"entry": "message", **message_view(m)} for m in messages]
    changes = select(HandoffEvent).where(scoped(HandoffEvent), HandoffEvent.created_at >= since)
    entries += [
        {"entry": "change", **handoff_event_view(e)}
        for e in (await session.execute(changes)).scalars()
    ]
    if with_csat:
        scores = dict(
            (
                await session.execute(
                    select(Conversation.id, Conversation.csat_score).where(
                        Conversation.patient_id == patient_id,
                        Conversation.csat_score.is_not(None),
                    )
                )
            ).all()
        )
        for entry in entries:
            if entry["entry"] == "change" and entry["kind"] == "resolved":
                entry["csat_score"] = scores.get(entry["conversation_id"])
    done = select(AttendantAction).where(
        scoped(AttendantAction), AttendantAction.created_at >= since
    )
    entries += [
        {"entry": "action", **action_view(a)} for a in (await session.execute(done)).scalars()
    ]
    return sorted(entries, key=lambda e: e["created_at"])


def _patient_card(patient: User, channels: list[str], *, whole: bool) -> dict[str, Any]:
    """Who the patient is; their contacts only to whom sees their whole history (an
    attendant triaging the queue has the name, the conversation and the handoff reason)."""
    return {
        "id": patient.id,
        "name": patient.name,
        "email": patient.email if whole else None,
        "cpf": mask_cpf(patient.cpf) if whole else None,
        "phone": mask_phone(patient.phone_e164) if whole else None,
        "channels": channels,
    }


async def conversation_detail(request: web.Request) -> web.Response:
    """The conversation and its patient's whole history across channels, or only this
    conversation while an attendant triages it (core.access); audit-logged either way."""
    ctx = request.app[CTX]
    user = current_user(request)
    async with ctx.db.session() as session:
        conversation = await readable_conversation(request, session)
        patient = await session.get_one(User, conversation.patient_id)
        whole = await access.sees_whole_history(session, user, patient.id)
        identities = (
            await session.execute(
                select(ChannelIdentity.channel).where(ChannelIdentity.patient_id == patient.id)
            )
        ).scalars()
        # Channels a reply can go out on: linked to the patient and with a sender.
        channels = sorted(
            {c for c in identities if c in ctx.senders and (whole or c == conversation.channel)}
        )
        timeline = await history_entries(
            session,
            patient.id,
            episode=None if whole else conversation.id,
            with_csat=access.is_manager(user),
        )
        labelled = await labels_of(session, [conversation.id])
        await audit.record(
            session,
            user,
            AuditAction.READ_HISTORY,
            patient_id=patient.id,
            conversation_id=conversation.id,
            ip=client_ip(request),
            scope="history" if whole else "episode",
        )
    return web.json_response(
        {
            "conversation": {
                **conversation_view(conversation, patient.name),
                "labels": labelled.get(conversation.id, []),
            },
            "patient": _patient_card(patient, channels, whole=whole),
            "scope": "history" if whole else "episode",
            "timeline": timeline,
            "messages": [e for e in timeline if e["entry"] == "message"],
        }
    )


def _text(body: dict[str, Any]) -> str:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("error.empty_text")
    if len(text) > MAX_REPLY_CHARS:
        raise BadRequest("error.text_too_long", limit=MAX_REPLY_CHARS)
    return text.strip()


def optional_body_id(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or (checked := id_from(value)) is None:
        raise BadRequest()
    return checked


async def reply(request: web.Request) -> web.Response:
    body = await read_json(request)
    channel = body.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise BadRequest()
    message = await talking.reply(
        request.app[CTX],
        path_conversation_id(request),
        current_user(request),
        _text(body),
        channel=channel,
    )
    return web.json_response(message_view(message), status=201)


async def add_note(request: web.Request) -> web.Response:
    text = _text(await read_json(request))
    message = await talking.add_note(
        request.app[CTX], path_conversation_id(request), current_user(request), text
    )
    return web.json_response(message_view(message), status=201)


Transition = Callable[[Context, int, User], Awaitable[Conversation]]


def _bodiless(transition: Transition) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A route for a transition that needs nothing but who asks and which conversation."""

    async def handler(request: web.Request) -> web.Response:
        conversation = await transition(
            request.app[CTX], path_conversation_id(request), current_user(request)
        )
        return web.json_response(conversation_view(conversation))

    return handler


async def transfer(request: web.Request) -> web.Response:
    target = optional_body_id(await read_json(request), "attendant_id")
    if target is None:
        raise BadRequest()
    conversation = await moves.transfer(
        request.app[CTX], path_conversation_id(request), current_user(request), target
    )
    return web.json_response(conversation_view(conversation))


async def reassign(request: web.Request) -> web.Response:
    target = optional_body_id(await read_json(request), "attendant_id")
    conversation = await moves.reassign(
        request.app[CTX], path_conversation_id(request), current_user(request), target
    )
    return web.json_response(conversation_view(conversation))


async def set_priority(request: web.Request) -> web.Response:
    body = await read_json(request)
    try:
        priority = Priority[str(body.get("priority", "")).upper()]
    except KeyError:
        raise BadRequest("error.invalid_priority") from None
    conversation = await moves.set_priority(
        request.app[CTX], path_conversation_id(request), current_user(request), priority
    )
    return web.json_response(conversation_view(conversation))


async def record_action(request: web.Request) -> web.Response:
    body = await read_json(request)
    kind = body.get("kind")
    if not isinstance(kind, str):
        raise BadRequest("error.unknown_action")
    details: dict[str, Any] = {}
    if (appointment_id := optional_body_id(body, "appointment_id")) is not None:
        details["appointment_id"] = appointment_id
    if (doctor_id := optional_body_id(body, "doctor_id")) is not None:
        details["doctor_id"] = doctor_id
    if isinstance(starts_at := body.get("starts_at"), str):
        details["starts_at"] = starts_at
    if isinstance(note := body.get("note"), str) and note.strip():
        details["note"] = note.strip()[:500]
    if body.get("over_cap") is True:  # staff confirmed booking beyond the cap (audited)
        details["over_cap"] = True
    action = await reception.record_action(
        request.app[CTX], path_conversation_id(request), current_user(request), kind, details
    )
    return web.json_response(action_view(action), status=201)


async def list_attendants(request: web.Request) -> web.Response:
    """The team with presence and load (patients held): transfer targets for attendants,
    the supervision board for managers."""
    held = (
        select(
            Conversation.assigned_attendant_id,
            func.count(func.distinct(Conversation.patient_id)),
        )
        .where(
            Conversation.owner == Owner.ATTENDANT,
            Conversation.status == ConversationStatus.OPEN,
        )
        .group_by(Conversation.assigned_attendant_id)
    )
    query = (
        select(User)
        .join(AttendantProfile, AttendantProfile.user_id == User.id)
        .where(User.is_active.is_(True))
        .options(selectinload(User.attendant_profile))
        .order_by(User.name)
    )
    async with request.app[CTX].db.session() as session:
        load = dict((await session.execute(held)).all())
        team = (await session.execute(query)).scalars().all()
    return web.json_response(
        [{**staff_view(u, audience="team"), "load": load.get(u.id, 0)} for u in team]
    )


async def set_presence(request: web.Request) -> web.Response:
    body = await read_json(request)
    try:
        presence = Presence(str(body.get("presence")))
    except ValueError:
        raise BadRequest("error.invalid_presence") from None
    await handoff.presence.set_presence(request.app[CTX], current_user(request), presence)
    return web.json_response({"presence": str(presence)})


CONVERSATION = r"/api/conversations/{id:\d+}"


def setup(app: web.Application) -> None:
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/conversations", list_conversations)
    app.router.add_get(CONVERSATION, conversation_detail)
    app.router.add_post(f"{CONVERSATION}/messages", reply)
    app.router.add_post(f"{CONVERSATION}/notes", add_note)
    app.router.add_post(f"{CONVERSATION}/take", _bodiless(moves.take))
    app.router.add_post(f"{CONVERSATION}/take-over", _bodiless(moves.take_over))
    app.router.add_post(f"{CONVERSATION}/transfer", transfer)
    app.router.add_post(f"{CONVERSATION}/reassign", reassign)
    app.router.add_post(f"{CONVERSATION}/priority", set_priority)
    app.router.add_post(f"{CONVERSATION}/resolve", _bodiless(resolution.resolve))
    app.router.add_post(f"{CONVERSATION}/actions", record_action)
    app.router.add_get("/api/attendants", list_attendants)
    app.router.add_post("/api/presence", set_presence)
