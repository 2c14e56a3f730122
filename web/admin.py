"""Admin pages and API: staff accounts, the clinic profile the assistant answers from, and
the audit log (filtered, paginated, with the chain's verification). Only admins
(core.access) reach them; every change is audit-logged with the admin's address; what
accounts.admin refuses is answered by the error middleware."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from accounts import admin, second_factor
from core import access, audit
from core.audit import AuditAction
from core.settings import CLINIC_TIMEZONE
from models.views import audit_entry_view, staff_view
from web import live
from web.api import read_json
from web.keys import CTX, bad_parameter, client_ip, current_admin, current_user, query_id
from web.pages import render_page

AUDIT_PAGE_SIZE = 50
CLINIC_TZ = ZoneInfo(CLINIC_TIMEZONE)


async def page(request: web.Request) -> web.Response:
    if not access.is_admin(current_user(request)):
        raise web.HTTPFound("/staff")
    return render_page("admin.html")


async def list_staff(request: web.Request) -> web.Response:
    current_admin(request)
    ctx = request.app[CTX]
    staff = await admin.list_staff(ctx.db)
    locks = await admin.login_locks(ctx, staff)
    async with ctx.db.session() as session:
        enrolled = await second_factor.enrolled_user_ids(session)
    return web.json_response(
        [
            {
                **staff_view(user, audience="admin"),
                "locked_for": round(locks.get(user.id, 0)),
                "second_factor": user.id in enrolled,
            }
            for user in staff
        ]
    )


async def create_staff(request: web.Request) -> web.Response:
    actor = current_admin(request)
    body = await read_json(request)
    user = await admin.create_staff(
        request.app[CTX].db,
        actor,
        name=str(body.get("name", "")),
        email=str(body.get("email", "")),
        role=body.get("role"),
        password=str(body.get("password", "")),
        capacity=body.get("capacity", request.app[CTX].settings.attendant_capacity),
        ip=client_ip(request),
    )
    return web.json_response({"id": user.id}, status=201)


async def update_staff(request: web.Request) -> web.Response:
    actor = current_admin(request)
    body = await read_json(request)
    changes = admin.StaffChanges(
        name=body.get("name"),
        role=body.get("role"),
        capacity=body.get("capacity"),
        is_active=body.get("is_active"),
        password=body.get("password"),
    )
    user = await admin.update_staff(
        request.app[CTX], actor, int(request.match_info["id"]), changes, ip=client_ip(request)
    )
    await live.close_revoked_sockets(request.app, user.id)
    return web.json_response({"id": user.id})


async def unlock_staff(request: web.Request) -> web.Response:
    actor = current_admin(request)
    user = await admin.lift_login_lock(
        request.app[CTX], actor, int(request.match_info["id"]), ip=client_ip(request)
    )
    return web.json_response({"id": user.id})


async def reset_second_factor(request: web.Request) -> web.Response:
    actor = current_admin(request)
    user_id = int(request.match_info["id"])
    await second_factor.reset(request.app[CTX].db, actor, user_id, ip=client_ip(request))
    return web.json_response({"id": user_id})


async def get_security(request: web.Request) -> web.Response:
    """GET /api/admin/security: `{"second_factor": "managers" | "all_staff" | "nobody"}`."""
    current_admin(request)
    async with request.app[CTX].db.session() as session:
        policy = await second_factor.current_policy(session)
    return web.json_response({"second_factor": str(policy)})


async def put_security(request: web.Request) -> web.Response:
    actor = current_admin(request)
    body = await read_json(request)
    policy = await second_factor.set_policy(
        request.app[CTX].db, actor, body.get("second_factor"), ip=client_ip(request)
    )
    return web.json_response({"second_factor": str(policy)})


async def get_profile(request: web.Request) -> web.Response:
    current_admin(request)
    profile = await admin.clinic_profile(request.app[CTX].db)
    return web.json_response({"name": profile.name, "data": profile.data})


async def put_profile(request: web.Request) -> web.Response:
    actor = current_admin(request)
    body = await read_json(request)
    profile = await admin.update_clinic_profile(
        request.app[CTX].db,
        actor,
        name=body.get("name"),
        data=body.get("data"),
        ip=client_ip(request),
    )
    return web.json_response({"name": profile.name, "data": profile.data})


def _day_start(request: web.Request, name: str, *, days_after: int = 0) -> datetime | None:
    """The start of a clinic-local day given as YYYY-MM-DD (or of the day `days_after` it)."""
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw) + timedelta(days=days_after)
    except ValueError:
        raise bad_parameter(name) from None
    return datetime.combine(day, time(0), CLINIC_TZ)


def _audit_filters(request: web.Request) -> audit.Filters:
    action = request.query.get("action") or None
    if action is not None and action not in AuditAction:
        raise bad_parameter("action")
    return audit.Filters(
        actor_id=query_id(request, "actor_id"),
        action=AuditAction(action) if action else None,
        patient_id=query_id(request, "patient_id"),
        since=_day_start(request, "from"),
        until=_day_start(request, "to", days_after=1),  # the "to" day is included
    )


async def audit_log(request: web.Request) -> web.Response:
    """GET /api/admin/audit?actor_id=&action=&patient_id=&from=YYYY-MM-DD&to=YYYY-MM-DD&page=N:
    newest first, AUDIT_PAGE_SIZE a page. Reading it is itself recorded."""
    actor = current_admin(request)
    filters = _audit_filters(request)
    page = query_id(request, "page") or 1
    async with request.app[CTX].db.session() as session:
        listed, total = await audit.search(
            session, filters, offset=(page - 1) * AUDIT_PAGE_SIZE, limit=AUDIT_PAGE_SIZE
        )
        await audit.record(
            session,
            actor,
            AuditAction.READ_AUDIT_LOG,
            patient_id=filters.patient_id,
            ip=client_ip(request),
            page=page,
        )
    return web.json_response(
        {
            "entries": [audit_entry_view(i.entry, i.actor_name, i.patient_name) for i in listed],
            "page": page,
            "pages": max(1, -(-total // AUDIT_PAGE_SIZE)),
            "total": total,
            "actions": [str(a) for a in AuditAction],
        }
    )


async def verify_audit_log(request: web.Request) -> web.Response:
    """GET /api/admin/audit/verify: whether the hash chain holds, and where it first breaks."""
    current_admin(request)
    async with request.app[CTX].db.session() as session:
        report = await audit.verify_chain(session)
    return web.json_response(report.view())


def setup(app: web.Application) -> None:
    app.router.add_get("/staff/admin", page)
    app.router.add_get("/api/admin/staff", list_staff)
    app.router.add_post("/api/admin/staff", create_staff)
    app.router.add_patch(r"/api/admin/staff/{id:\d+}", update_staff)
    app.router.add_post(r"/api/admin/staff/{id:\d+}/unlock", unlock_staff)
    app.router.add_post(r"/api/admin/staff/{id:\d+}/second-factor/reset", reset_second_factor)
    app.router.add_get("/api/admin/security", get_security)
    app.router.add_put("/api/admin/security", put_security)
    app.router.add_get("/api/admin/clinic", get_profile)
    app.router.add_put("/api/admin/clinic", put_profile)
    app.router.add_get("/api/admin/audit", audit_log)
    app.router.add_get("/api/admin/audit/verify", verify_audit_log)
