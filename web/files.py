"""Files in the history: staff and the patient open them, providers fetch the ones sent to
them through signed links, staff reply with one. Access, checks and the audit trail are
`messaging.files`'s (and `core.access`'s); these views only read requests and answer."""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from core.errors import BadRequest, ClinicError
from handoff.transitions import talking
from messaging import files
from messaging.files import Opened
from models.views import message_view
from web.api import MAX_REPLY_CHARS
from web.keys import CTX, SETTINGS, client_ip, current_user, id_from

# Shown in the page (and so inline): what a browser displays without running anything.
INLINE_KINDS = frozenset({"image", "audio", "video"})
INLINE_TYPES = frozenset({"application/pdf"})
# The form fields of a reply with a file besides the file itself.
FIELD_LIMIT = MAX_REPLY_CHARS * 4


def _answer(opened: Opened) -> web.Response:
    stored = opened.file
    inline = stored.kind in INLINE_KINDS or stored.mime_type in INLINE_TYPES
    name = stored.filename or f"arquivo-{stored.id}"
    disposition = "inline" if inline else "attachment"
    quoted = name.encode("ascii", "replace").decode().replace('"', "_")
    # The platform's headers (web/security.py) come on top: a CSP that runs nothing of the
    # file's, and nosniff, so the type served is the one its content showed.
    headers = {
        "Content-Disposition": f'{disposition}; filename="{quoted}"',
        "Cache-Control": "private, no-store",
    }
    return web.Response(body=opened.content, content_type=stored.mime_type, headers=headers)


async def staff_file(request: web.Request) -> web.Response:
    opened = await files.open_file(
        request.app[CTX], current_user(request), request.match_info["key"], ip=client_ip(request)
    )
    return _answer(opened)


async def own_file(request: web.Request) -> web.Response:
    """The patient's own file, from "Histórico de mensagens"."""
    return await staff_file(request)


async def linked_file(request: web.Request) -> web.Response:
    """A provider (or a patient on a channel without files) opening a signed link."""
    opened = await files.open_signed(
        request.app[CTX],
        request.match_info["key"],
        request.query.get("expires", ""),
        request.query.get("sig", ""),
        ip=client_ip(request),
    )
    return _answer(opened)


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    content = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        content += chunk
        if len(content) > limit:
            raise BadRequest("files.error.too_large")
    return bytes(content)


async def _read_form(
    request: web.Request, limit: int
) -> tuple[dict[str, str], bytes | None, str | None]:
    """The text fields, the file and its name of a multipart reply."""
    fields: dict[str, str] = {}
    content, filename = None, None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise BadRequest()
        if part.name == "file" and content is None:
            filename = part.filename
            content = await _read_part(part, limit)
        elif part.name in ("text", "channel"):
            fields[part.name] = (await _read_part(part, FIELD_LIMIT)).decode()
        else:
            raise BadRequest()
    return fields, content, filename


async def reply_with_file(request: web.Request) -> web.Response:
    """A staff reply carrying one file (multipart: `file`, and optionally `text` and
    `channel`): the file is checked and stored, then sent like any reply."""
    conversation_id = id_from(request.match_info["id"])
    if conversation_id is None or not request.content_type.startswith("multipart/"):
        raise BadRequest()
    limit = request.app[SETTINGS].max_file_bytes
    try:
        fields, content, filename = await _read_form(request, limit)
    except ValueError as exc:  # not a well-formed multipart body
        raise BadRequest() from exc
    if content is None:
        raise BadRequest("files.error.missing")
    text = fields.get("text", "").strip()
    if len(text) > MAX_REPLY_CHARS:
        raise BadRequest("error.text_too_long", limit=MAX_REPLY_CHARS)
    ctx, user = request.app[CTX], current_user(request)
    stored = await files.keep_upload(ctx, user, conversation_id, content, filename)
    try:
        message = await talking.reply(
            ctx,
            conversation_id,
            user,
            text,
            channel=fields.get("channel") or None,
            attachments=[files.attachment_of(stored)],
        )
    except ClinicError:  # refused (e.g. no longer theirs): nothing of it stays
        await files.discard(ctx, stored)
        raise
    return web.json_response(message_view(message), status=201)


def setup(app: web.Application) -> None:
    files.store_for(app[SETTINGS])  # a store this installation cannot use stops the start
    key = "{key:[A-Za-z0-9_-]{16,64}}"
    app.router.add_get(f"/api/files/{key}", staff_file)
    app.router.add_get(f"/api/portal/files/{key}", own_file)
    app.router.add_get(f"/files/{key}", linked_file)
    app.router.add_post(r"/api/conversations/{id:\d+}/files", reply_with_file)
