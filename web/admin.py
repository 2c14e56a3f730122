"""Admin pages and API: staff accounts and the clinic profile the assistant answers from."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from accounts import admin
from models import Role, User
from web import live
from web.api import read_json, user_view
from web.keys import CTX, current_user
from web.middlewares import ApiError
from web.pages import render_page


def _admin(request: web.Request) -> User:
    user = current_user(request)
    if user.role != Role.ADMIN:
        raise ApiError(403, "error.forbidden")
    return user


def _staff_view(user: User) -> dict[str, Any]:
    return {**user_view(user), "is_active": user.is_active}


async def page(request: web.Request) -> web.Response:
    if current_user(request).role != Role.ADMIN:
        raise web.HTTPFound("/staff")
    return render_page("admin.html")


async def list_staff(request: web.Request) -> web.Response:
    _admin(request)
    staff = await admin.list_staff(request.app[CTX].db)
    return web.json_response([_staff_view(user) for user in staff])


async def create_staff(request: web.Request) -> web.Response:
    actor = _admin(request)
    body = await read_json(request)
    try:
        user = await admin.create_staff(
            request.app[CTX].db,
            actor,
            name=str(body.get("name", "")),
            email=str(body.get("email", "")),
            role=body.get("role"),
            password=str(body.get("password", "")),
            capacity=body.get("capacity", request.app[CTX].settings.attendant_capacity),
        )
    except admin.AdminError as error:
        raise ApiError(
            409 if error.code == "error.email_taken" else 400, error.code, **error.values
        ) from None
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
    try:
        user = await admin.update_staff(
            request.app[CTX], actor, int(request.match_info["id"]), changes
        )
    except admin.AdminError as error:
        raise ApiError(
            404 if error.code == "error.not_found" else 400, error.code, **error.values
        ) from None
    await live.close_revoked_sockets(request.app, user.id)
    return web.json_response({"id": user.id})


async def get_profile(request: web.Request) -> web.Response:
    _admin(request)
    try:
        profile = await admin.clinic_profile(request.app[CTX].db)
    except admin.AdminError:
        raise ApiError(404, "error.not_found") from None
    return web.json_response({"name": profile.name, "data": profile.data})


async def put_profile(request: web.Request) -> web.Response:
    actor = _admin(request)
    body = await read_json(request)
    try:
        profile = await admin.update_clinic_profile(
            request.app[CTX].db, actor, name=body.get("name"), data=body.get("data")
        )
    except admin.AdminError as error:
        raise ApiError(400, error.code, **error.values) from None
    return web.json_response({"name": profile.name, "data": profile.data})


def setup(app: web.Application) -> None:
    app.router.add_get("/staff/admin", page)
    app.router.add_get("/api/admin/staff", list_staff)
    app.router.add_post("/api/admin/staff", create_staff)
    app.router.add_patch(r"/api/admin/staff/{id:\d+}", update_staff)
    app.router.add_get("/api/admin/clinic", get_profile)
    app.router.add_put("/api/admin/clinic", put_profile)
