"""Labels and canned responses: the manager's page that manages them, their JSON API, and
putting labels on conversations from the workspace. The rules and every write are
handoff.labels'; this only reads the request and shapes the answer."""

from __future__ import annotations

from aiohttp import web

from core import access
from core.errors import NotFound
from handoff import labels
from web.api import read_json
from web.keys import CTX, current_user, id_from
from web.pages import render_page


def _id(request: web.Request, key: str = "id") -> int:
    found = id_from(request.match_info[key])
    if found is None:
        raise NotFound()
    return found


async def manage_page(request: web.Request) -> web.Response:
    """Managers and admins only; anyone else goes back to the workspace."""
    if not access.may_manage_labels(current_user(request)):
        raise web.HTTPFound("/staff")
    return render_page("labels.html")


async def list_labels(request: web.Request) -> web.Response:
    async with request.app[CTX].db.session() as session:
        found = await labels.all_labels(session)
    return web.json_response([labels.label_view(label) for label in found])


async def create_label(request: web.Request) -> web.Response:
    fields = labels.LabelFields.parse(await read_json(request))
    label = await labels.create_label(request.app[CTX], current_user(request), fields)
    return web.json_response(labels.label_view(label), status=201)


async def update_label(request: web.Request) -> web.Response:
    fields = labels.LabelFields.parse(await read_json(request))
    label = await labels.update_label(request.app[CTX], current_user(request), _id(request), fields)
    return web.json_response(labels.label_view(label))


async def delete_label(request: web.Request) -> web.Response:
    label_id = _id(request)
    await labels.delete_label(request.app[CTX], current_user(request), label_id)
    return web.json_response({"id": label_id})


async def list_canned(request: web.Request) -> web.Response:
    async with request.app[CTX].db.session() as session:
        found = await labels.all_canned(session)
    return web.json_response([labels.canned_view(canned) for canned in found])


async def create_canned(request: web.Request) -> web.Response:
    fields = labels.CannedFields.parse(await read_json(request))
    canned = await labels.create_canned(request.app[CTX], current_user(request), fields)
    return web.json_response(labels.canned_view(canned), status=201)


async def update_canned(request: web.Request) -> web.Response:
    fields = labels.CannedFields.parse(await read_json(request))
    canned = await labels.update_canned(
        request.app[CTX], current_user(request), _id(request), fields
    )
    return web.json_response(labels.canned_view(canned))


async def delete_canned(request: web.Request) -> web.Response:
    canned_id = _id(request)
    await labels.delete_canned(request.app[CTX], current_user(request), canned_id)
    return web.json_response({"id": canned_id})


async def _set_label(request: web.Request, *, on: bool) -> web.Response:
    conversation_id = _id(request)
    now = await labels.set_label(
        request.app[CTX], current_user(request), conversation_id, _id(request, "label"), on=on
    )
    return web.json_response({"conversation_id": conversation_id, "labels": now})


async def put_label_on(request: web.Request) -> web.Response:
    return await _set_label(request, on=True)


async def take_label_off(request: web.Request) -> web.Response:
    return await _set_label(request, on=False)


LABEL = r"/api/labels/{id:\d+}"
CANNED = r"/api/canned-responses/{id:\d+}"
ON_CONVERSATION = r"/api/conversations/{id:\d+}/labels/{label:\d+}"


def setup(app: web.Application) -> None:
    app.router.add_get("/staff/etiquetas", manage_page)
    app.router.add_get("/api/labels", list_labels)
    app.router.add_post("/api/labels", create_label)
    app.router.add_patch(LABEL, update_label)
    app.router.add_delete(LABEL, delete_label)
    app.router.add_get("/api/canned-responses", list_canned)
    app.router.add_post("/api/canned-responses", create_canned)
    app.router.add_patch(CANNED, update_canned)
    app.router.add_delete(CANNED, delete_canned)
    app.router.add_put(ON_CONVERSATION, put_label_on)
    app.router.add_delete(ON_CONVERSATION, take_label_off)
