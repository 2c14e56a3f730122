"""Admin pages and API: staff accounts and the clinic profile the assistant answers from.
Only admins (core.access) reach them; what accounts.admin refuses is answered by the error
middleware."""

from __future__ import annotations

from aiohttp import web

from accounts import admin
from core import access
from core.errors import Forbidden
from models import User
from models.views import staff_view
from web import live
from web.api import read_json
from web.keys import CTX, current_user
from web.pages import render_page


def _admin(request: web.Request) -> User:
    user = current_user(request)
    if not access.is_admin(user):
        raise Forbidden()
    return user


async def page(request: web.Request) -> web.Response:
    if not access.is_admin(current_user(request)):
        raise web.HTTPFound("/staff")
    return render_page("admin.html")


async def list_staff(request: web.Request) -> web.Response:
    _admin(request)
    ctx = request.app[CTX]
    staff = await admin.list_staff(ctx.db)
    locks = await admin.login_locks(ctx, staff)
    return web.json_response(
        [
            {**staff_view(user, audience="admin"), "locked_for": round(locks.get(user.id, 0))}
            for user in staff
        ]
    )


async def create_staff(request: web.Request) -> web.Response:
    actor = _admin(request)
    body = await read_json(request)
    user = await admin.create_staff(
        request.app[CTX].db,
        actor,
        name=str(body.get("name", "")),
        email=str(body.get("email", "")),
        role=body.get("role"),
        password=str(body.get("password", "")),
        capacity=body.get("capacity", request.app[CTX].settings.attendant_capacity),
    )
    return web.json_response({"id": user.id}, status=201)


async def update_staff(request: web.Request) -> web.Response:
    actor = _admin(request)
    body = await read_json(request)
    changes = admin.StaffChanges(
        name=body.get("name"),
        role=body.get("role"),
        capacity=body.get("capacity"),
        is_active=body.get("is_active"),
        password=body.get("password"),
    )
    user = await admin.update_staff(request.app[CTX], actor, int(request.match_info["id"]), changes)
    await live.close_revoked_sockets(request.app, user.id)
    return web.json_response({"id": user.id})


async def unlock_staff(request: web.Request) -> web.Response:
    actor = _admin(request)
    user = await admin.lift_login_lock(request.app[CTX], actor, int(request.match_info["id"]))
    return web.json_response({"id": user.id})


async def get_profile(request: web.Request) -> web.Response:
    _admin(request)
    profile = await admin.clinic_profile(request.app[CTX].db)
    return web.json_response({"name": profile.name, "data": profile.data})


async def put_profile(request: web.Request) -> web.Response:
    actor = _admin(request)
    body = await read_json(request)
    profile = await admin.update_clinic_profile(
        request.app[CTX].db, actor, name=body.get("name"), data=body.get("data")
    )
    return web.json_response({"name": profile.name, "data": profile.data})


def setup(app: web.Application) -> None:
    app.router.add_get("/staff/admin", page)
    app.router.add_get("/api/admin/staff", list_staff)
    app.router.add_post("/api/admin/staff", create_staff)
    app.router.add_patch(r"/api/admin/staff/{id:\d+}", update_staff)
    app.router.add_post(r"/api/admin/staff/{id:\d+}/unlock", unlock_staff)
    app.router.add_get("/api/admin/clinic", get_profile)
    app.router.add_put("/api/admin/clinic", put_profile)
