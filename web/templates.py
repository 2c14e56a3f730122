"""Approved message templates: the admin's registry (`/api/admin/templates`), and for the
staff reply box the conversation's messaging window with the templates it may send
(`/api/conversations/{id}/window`) and sending one (`.../template-messages`). The rules are
in `messaging.windows` and `messaging.templates`; sending goes through the same transition
as a typed reply (`handoff.transitions.talking.reply`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from core.errors import BadRequest, NotFound
from handoff.transitions import talking
from messaging import templates
from messaging.windows import reply_identity, window
from models import AuthorKind, ChannelIdentity, MessageTemplate
from models.views import message_view
from web.api import optional_body_id, path_conversation_id, read_json, readable_conversation
from web.keys import CTX, client_ip, current_user

CONVERSATION = r"/api/conversations/{id:\d+}"


def template_view(template: MessageTemplate) -> dict[str, Any]:
    return {
        "id": template.id,
        "kind": str(template.kind),
        "name": template.name,
        "language": template.language,
        "content_sid": template.content_sid,
        "purpose": str(template.purpose),
        "body": template.body,
        "variables": template.variables,
        "active": template.active,
    }


async def list_templates(request: web.Request) -> web.Response:
    listed = await templates.list_all(request.app[CTX].db, current_user(request))
    return web.json_response([template_view(t) for t in listed])


async def create_template(request: web.Request) -> web.Response:
    fields = templates.TemplateFields.parse(await read_json(request))
    saved = await templates.save(
        request.app[CTX].db, current_user(request), fields, ip=client_ip(request)
    )
    return web.json_response(template_view(saved), status=201)


async def update_template(request: web.Request) -> web.Response:
    fields = templates.TemplateFields.parse(await read_json(request))
    saved = await templates.save(
        request.app[CTX].db,
        current_user(request),
        fields,
        template_id=int(request.match_info["template_id"]),
        ip=client_ip(request),
    )
    return web.json_response(template_view(saved))


async def conversation_window(request: web.Request) -> web.Response:
    """GET .../window?channel=: whether a person may type a reply on that channel (the
    conversation's by default) now and until when, and the approved templates it takes once
    closed."""
    ctx = request.app[CTX]
    async with ctx.db.session() as session:
        conversation = await readable_conversation(request, session)
        channel = request.query.get("channel") or conversation.channel
        identity = (
            await session.get_one(ChannelIdentity, conversation.channel_identity_id)
            if channel == conversation.channel
            else await reply_identity(session, conversation.patient_id, channel)
        )
        if identity is None:
            raise NotFound("error.channel_unavailable")
        state = window(ctx.senders, identity, AuthorKind.ATTENDANT)
        offered = await templates.offered(session, state.templates) if state.templates else []
    return web.json_response(
        {
            "channel": channel,
            "open": state.free_text,
            "reach": str(state.reach),
            "closes_at": state.closes_at.isoformat() if state.closes_at else None,
            "template_kind": str(state.templates) if state.templates else None,
            "templates": [template_view(t) for t in offered],
        }
    )


async def send_template(request: web.Request) -> web.Response:
    """POST .../template-messages {template_id, values, channel?}: the approved template,
    recorded with its rendered text."""
    body = await read_json(request)
    template_id = optional_body_id(body, "template_id")
    channel = body.get("channel")
    if template_id is None or (channel is not None and not isinstance(channel, str)):
        raise BadRequest()
    values = body.get("values", [])
    message = await talking.reply(
        request.app[CTX],
        path_conversation_id(request),
        current_user(request),
        "",
        channel=channel,
        template=(template_id, values if isinstance(values, list) else []),
    )
    return web.json_response(message_view(message), status=201)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/admin/templates", list_templates)
    app.router.add_post("/api/admin/templates", create_template)
    app.router.add_put(r"/api/admin/templates/{template_id:\d+}", update_template)
    app.router.add_get(f"{CONVERSATION}/window", conversation_window)
    app.router.add_post(f"{CONVERSATION}/template-messages", send_template)
