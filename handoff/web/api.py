"""The staff JSON API. Every route but login requires a staff session (see middlewares)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from handoff import actions
from handoff.auth import audit, authenticate, close_session, open_session
from handoff.events import conversation_view
from handoff.history import message_view
from handoff.identity import mask_cpf
from handoff.web.keys import CTX, SESSION_COOKIE, current_user
from handoff.web.middlewares import ApiError
from models import Conversation, ConversationStatus, Message, Owner, Presence, Role, User

MAX_REPLY_CHARS = 4096
HISTORY_LIMIT = 500


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(415, "error.invalid_json")
    body = await request.json()
    if not isinstance(body, dict):
        raise ApiError(400, "error.invalid_json")
    return body


def user_view(user: User) -> dict[str, Any]:
    profile = user.attendant_profile
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": str(user.role),
        "presence": str(profile.presence) if profile else None,
        "capacity": profile.capacity if profile else None,
    }


async def login(request: web.Request) -> web.Response:
    body = await read_json(request)
    async with request.app[CTX].db.session() as session:
        user = await authenticate(
            session, str(body.get("email", "")), str(body.get("password", ""))
        )
        if user is None:
            raise ApiError(401, "error.invalid_login")
        token = await open_session(session, user)
    response = web.json_response({"id": user.id, "role": str(user.role)})
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/")
    return response


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with request.app[CTX].db.session() as session:
            await close_session(session, token)
    response = web.json_response({})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    query = (
        select(User)
        .where(User.id == current_user(request).id)
        .options(selectinload(User.attendant_profile))
    )
    async with request.app[CTX].db.session() as session:
        user = (await session.execute(query)).scalar_one()
    return web.json_response(user_view(user))


async def list_conversations(request: web.Request) -> web.Response:
    user = current_user(request)
    query = (
        select(Conversation, User.name)
        .join(User, User.id == Conversation.patient_id)
        .where(Conversation.status == ConversationStatus.OPEN)
        .order_by(Conversation.priority.desc(), Conversation.last_message_at.desc())
    )
    if user.role == Role.ATTENDANT:
        query = query.where(
            or_(Conversation.owner == Owner.QUEUED, Conversation.assigned_attendant_id == user.id)
        )
    async with request.app[CTX].db.session() as session:
        rows = (await session.execute(query)).all()
    return web.json_response([conversation_view(c, name) for c, name in rows])


async def _readable_conversation(request: web.Request, session: Any) -> Conversation:
    user = current_user(request)
    conversation = await session.get(Conversation, int(request.match_info["id"]))
    if conversation is None:
        raise ApiError(404, "error.not_found")
    if user.role == Role.ATTENDANT and conversation.assigned_attendant_id != user.id:
        raise ApiError(403, "error.not_owner")
    return conversation


async def conversation_detail(request: web.Request) -> web.Response:
    """The conversation and its patient's whole history across channels (audit-logged)."""
    async with request.app[CTX].db.session() as session:
        conversation = await _readable_conversation(request, session)
        patient = await session.get(User, conversation.patient_id)
        query = (
            select(Message)
            .where(Message.patient_id == patient.id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(HISTORY_LIMIT)
        )
        messages = (await session.execute(query)).scalars().all()
        audit(
            session,
            current_user(request),
            "read_history",
            patient_id=patient.id,
            conversation_id=conversation.id,
            ip=request.remote,
        )
    return web.json_response(
        {
            "conversation": conversation_view(conversation, patient.name),
            "patient": {
                "id": patient.id,
                "name": patient.name,
                "email": patient.email,
                "cpf": mask_cpf(patient.cpf),
            },
            "messages": [message_view(m) for m in reversed(messages)],
        }
    )


def _reply_text(body: dict[str, Any]) -> str:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "error.empty_text")
    if len(text) > MAX_REPLY_CHARS:
        raise ApiError(400, "error.text_too_long", limit=MAX_REPLY_CHARS)
    return text.strip()


async def reply(request: web.Request) -> web.Response:
    text = _reply_text(await read_json(request))
    conversation_id = int(request.match_info["id"])
    await actions.reply(request.app[CTX], conversation_id, current_user(request), text)
    return web.json_response({}, status=201)


async def resolve(request: web.Request) -> web.Response:
    conversation_id = int(request.match_info["id"])
    conversation = await actions.resolve(request.app[CTX], conversation_id, current_user(request))
    return web.json_response(conversation_view(conversation))


async def set_presence(request: web.Request) -> web.Response:
    body = await read_json(request)
    try:
        presence = Presence(body.get("presence"))
    except ValueError:
        raise ApiError(400, "error.invalid_presence") from None
    await actions.set_presence(request.app[CTX], current_user(request), presence)
    return web.json_response({"presence": str(presence)})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/conversations", list_conversations)
    app.router.add_get(r"/api/conversations/{id:\d+}", conversation_detail)
    app.router.add_post(r"/api/conversations/{id:\d+}/messages", reply)
    app.router.add_post(r"/api/conversations/{id:\d+}/resolve", resolve)
    app.router.add_post("/api/presence", set_presence)
