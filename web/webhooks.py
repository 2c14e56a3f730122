"""The public doors of the channels on the web process: every provider's webhook at
`/webhooks/<channel>/webhook`, and the site widget's script and socket.

A webhook call goes: size checked before reading → signature verified on the raw bytes
(403, nothing stored) → decoded (400 when unreadable) → every event recorded (503 when the
database fails: the provider retries) → acknowledged; routing continues in the background
(`messaging/inbound.py`).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import math
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, web

from channels.base import BadPayload, Inbound, Media, ProviderChannel, WebhookRequest
from channels.registry import PROVIDERS
from channels.webchat import (
    CHANNEL as WEBCHAT,
)
from channels.webchat import (
    DELIVER_PATH,
    SOCKET_MAX_BYTES,
    UPLOAD_PATH,
    WIDGET_CSS,
    WIDGET_JS,
    VisitorTokens,
    WidgetLimits,
    WidgetSocket,
    patient_visitor_id,
    push_recorded,
    valid_client_id,
    visitor_inbound,
)
from core.errors import BadRequest, Forbidden, PayloadTooLarge, TooManyRequests, Unauthenticated
from core.logs import log_failure
from messaging import files
from messaging.identities import identity_for
from models import Role
from web.keys import CTX, INBOX, SETTINGS, USER, WIDGET_SOCKETS, client_ip
from web.security import require_origin

log = logging.getLogger(__name__)

PROVIDER_NAMES = frozenset(provider.name for provider in PROVIDERS)
WIDGET_TOKENS = web.AppKey("widget_tokens", VisitorTokens)
READ_CHUNK = 64 * 1024
# The widget's own form fields (token, client id) and the multipart framing around a file.
FIELD_LIMIT = 1024
FORM_ROOM = 16 * 1024


def _error(status: int, error: str) -> web.Response:
    # Providers and their consoles read these; they are not shown to patients or staff.
    return web.json_response({"error": error}, status=status)


def _channel(request: web.Request) -> ProviderChannel | web.Response:
    """The enabled channel the URL names; an unknown one is 404, a disabled one 403 (fail
    closed: without its secrets a channel can authenticate nothing)."""
    name = request.match_info["channel"]
    if name not in PROVIDER_NAMES:
        raise web.HTTPNotFound()
    channel = request.app[INBOX].channels.get(name)
    if channel is None:
        return _error(403, f"the {name} channel is not configured")
    return channel


async def _read(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` (refused before it is read when the
    caller says its length)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _webhook_request(request: web.Request, body: bytes) -> WebhookRequest:
    return WebhookRequest(
        path=request.path,
        query_string=request.query_string,
        query=request.query,
        headers=request.headers,
        body=body,
    )


async def handshake(request: web.Request) -> web.Response:
    channel = _channel(request)
    if isinstance(channel, web.Response):
        return channel
    return await channel.handshake(_webhook_request(request, b""))


async def receive(request: web.Request) -> web.Response:
    channel = _channel(request)
    if isinstance(channel, web.Response):
        return channel
    body = await _read(request, channel.max_body)
    if body is None:
        refused = _error(413, "payload too large")
        refused.force_close()  # rather than drain the rest of the body to keep the connection
        return refused
    call = _webhook_request(request, body)
    if not channel.verify(call):
        log.warning("%s: refused a request with a missing or bad signature", channel.name)
        return _error(403, "invalid signature")
    try:
        if channel.decodes_blocking:
            events = await asyncio.to_thread(channel.decode, call)
        else:
            events = channel.decode(call)
    except BadPayload as exc:
        log.warning("%s: refused an unreadable request: %s", channel.name, exc)
        return _error(400, str(exc))
    try:
        await request.app[INBOX].handle(channel.name, events)
    except Exception as exc:  # e.g. the database is down: the provider retries
        log_failure(log, exc, "%s: could not record a delivery", channel.name)
        return _error(503, "temporarily unavailable, retry later")
    return channel.ack()


async def widget_script(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(WIDGET_JS, headers={"Content-Type": "application/javascript"})


async def widget_style(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(WIDGET_CSS, headers={"Content-Type": "text/css"})


async def _signed_in_visitor(request: web.Request) -> str | None:
    """The widget visitor id of the patient the portal session logs in (their webchat
    identity made on first use), or None for an anonymous visitor."""
    user = request.get(USER)  # set by the auth middleware, which a channel-only app lacks
    if user is None or user.role != Role.PATIENT:
        return None
    visitor_id = patient_visitor_id(user.id)
    async with request.app[CTX].db.session() as session:
        identity = await identity_for(session, user.id, WEBCHAT, visitor_id)
    return visitor_id if identity is not None else None


async def widget_socket(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS]
    require_origin(request, settings.embedding_origins)
    limits = WidgetLimits(request.app[CTX].limits, client_ip(request), settings.session_secret)
    if wait := await limits.socket_wait():
        raise web.HTTPTooManyRequests(headers={"Retry-After": str(math.ceil(wait))})
    ws = web.WebSocketResponse(max_msg_size=SOCKET_MAX_BYTES, heartbeat=30)
    await ws.prepare(request)
    inbox = request.app[INBOX]

    async def accept(inbound: Inbound) -> int | None:
        recorded = await inbox.accept(inbound)
        return recorded.message.id if recorded else None

    socket = WidgetSocket(
        ws,
        request.app[WIDGET_SOCKETS],
        request.app[WIDGET_TOKENS],
        limits,
        request.app[CTX].db,
        accept,
        signed_in=await _signed_in_visitor(request),
    )
    await socket.serve()
    return ws


async def _part(part: BodyPartReader, limit: int) -> bytes | None:
    """A form part's bytes, or None when it is larger than `limit`."""
    content = bytearray()
    while chunk := await part.read_chunk(READ_CHUNK):
        content += chunk
        if len(content) > limit:
            return None
    return bytes(content)


async def _file_part(request: web.Request) -> tuple[dict[str, str], BodyPartReader]:
    """The widget's form fields (`token`, `id`), which come before its `file`, and the file
    part, still unread."""
    fields: dict[str, str] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            break
        if part.name == "file":
            return fields, part
        value = await _part(part, FIELD_LIMIT)
        if part.name not in ("token", "id") or part.name in fields or value is None:
            break
        fields[part.name] = value.decode()
    raise BadRequest("files.error.missing")


async def widget_file(request: web.Request) -> web.Response:
    """A file the visitor attaches in the widget (protocol in channels/webchat.py): checked
    by content, recorded as their message and stored with it."""
    settings, ctx = request.app[SETTINGS], request.app[CTX]
    require_origin(request, settings.embedding_origins)
    limit = settings.max_file_bytes
    if request.content_length is not None and request.content_length > limit + FORM_ROOM:
        raise PayloadTooLarge()
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("widget.error.malformed")
    try:
        fields, part = await _file_part(request)
        signed_in = await _signed_in_visitor(request)
        if fields.get("token") is None and signed_in is None:
            raise Unauthenticated("widget.error.session")
        visitor_id = request.app[WIDGET_TOKENS].visitor(fields.get("token"), signed_in)
        if visitor_id is None:
            raise Forbidden("widget.error.session")
        client_id = fields.get("id")
        if not valid_client_id(client_id):
            raise BadRequest("widget.error.malformed")
        limits = WidgetLimits(ctx.limits, client_ip(request), settings.session_secret)
        if await limits.message_refused(visitor_id):
            raise TooManyRequests(60, "widget.error.rate_limited")
        content = await _part(part, limit)
    except (ValueError, UnicodeDecodeError) as exc:  # not a well-formed multipart body
        raise BadRequest("widget.error.malformed") from exc
    if content is None:
        raise PayloadTooLarge()
    found = files.accepted(content, settings)
    inbound = visitor_inbound(
        visitor_id,
        client_id,
        limits,
        text="",
        attachments=[files.sent_attachment(found, part.filename)],
    )
    await request.app[INBOX].accept(inbound)
    message_id = await files.keep_sent(
        ctx, WEBCHAT, inbound.provider_message_id, Media(content, part.filename)
    )
    attachment = {**inbound.attachments[0], "kind": found.kind, "mime_type": found.mime_type}
    return web.json_response(
        {"id": client_id, "message_id": message_id, "attachment": attachment}, status=201
    )


async def deliver_to_widget(request: web.Request) -> web.Response:
    """Another process (the worker) asks this one to push a recorded message to a widget."""
    expected = f"Bearer {request.app[SETTINGS].internal_token}"
    if not hmac.compare_digest(
        request.headers.get("Authorization", "").encode(), expected.encode()
    ):
        return _error(403, "forbidden")
    try:
        message_id = int((await request.json())["message_id"])
    except (KeyError, TypeError, ValueError):
        return _error(400, "message_id required")
    if not await push_recorded(request.app[CTX].db, request.app[WIDGET_SOCKETS], message_id):
        return _error(404, "no such webchat message")
    return web.Response(status=204)


async def background_work(app: web.Application) -> AsyncIterator[None]:
    """The sweep of unrouted inbound and each channel's own loops (the e-mail poller), for as
    long as the app runs."""
    inbox = app[INBOX]
    tasks = [inbox.start()] + [
        asyncio.create_task(channel.run_in_background(functools.partial(inbox.handle, name)))
        for name, channel in inbox.channels.items()
    ]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await inbox.drain()


def setup(app: web.Application) -> None:
    app[WIDGET_TOKENS] = VisitorTokens(app[SETTINGS].session_secret)
    app.router.add_get("/webhooks/webchat/widget.js", widget_script)
    app.router.add_get("/webhooks/webchat/widget.css", widget_style)
    app.router.add_get("/webhooks/webchat/ws", widget_socket)
    app.router.add_post(UPLOAD_PATH, widget_file)
    app.router.add_post(DELIVER_PATH, deliver_to_widget)
    app.router.add_get("/webhooks/{channel}/webhook", handshake)
    app.router.add_post("/webhooks/{channel}/webhook", receive)
    app.cleanup_ctx.append(background_work)
