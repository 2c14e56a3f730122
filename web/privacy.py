"""The data subject's rights (LGPD art. 18) over HTTP: consents (see and withdraw), the
export (JSON and a readable HTML document) and erasure — the patient's own from the portal,
any patient's by an admin. Exports and erasures are recorded in the audit log."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from accounts import consent, erasure, export
from accounts.auth import password_matches
from core import audit
from core.audit import AuditAction
from core.catalog import t
from core.errors import BadRequest
from web.api import read_json
from web.keys import CTX, SESSION_COOKIE, client_ip, current_admin, current_user

PORTAL_CHANNEL = "portal"
ADMIN_CHANNEL = "admin"
OWN_EXPORT = "meus-dados"


class WrongPassword(BadRequest):
    code = "privacy.error.wrong_password"
    status = 403


def _patient_in_path(request: web.Request) -> int:
    return int(request.match_info["id"])


# --- Consents --------------------------------------------------------------------------------


async def consents(request: web.Request) -> web.Response:
    """Each purpose with its current text and version, whether the patient agreed to it,
    and every consent they gave or withdrew."""
    patient_id = current_user(request).id
    async with request.app[CTX].db.session() as session:
        records = await consent.history(session, patient_id)
    active = {c.purpose: c for c in records if c.withdrawn_at is None}
    return web.json_response(
        [
            {
                "purpose": purpose,
                "title": t(f"consent.{purpose}.title"),
                "text": t(f"consent.{purpose}.text"),
                "version": consent.current_version(purpose),
                "granted_at": active[purpose].granted_at.isoformat() if purpose in active else None,
                "granted_version": active[purpose].text_version if purpose in active else None,
            }
            for purpose in consent.PURPOSES
        ]
    )


async def grant_consent(request: web.Request) -> web.Response:
    async with request.app[CTX].db.session() as session:
        await consent.grant(
            session,
            current_user(request).id,
            request.match_info["purpose"],
            channel=PORTAL_CHANNEL,
        )
    return await consents(request)


async def withdraw_consent(request: web.Request) -> web.Response:
    async with request.app[CTX].db.session() as session:
        await consent.withdraw(
            session,
            current_user(request).id,
            request.match_info["purpose"],
            channel=PORTAL_CHANNEL,
        )
    return await consents(request)


# --- Export ----------------------------------------------------------------------------------


async def _export(request: web.Request, patient_id: int, fmt: str, stem: str) -> web.Response:
    ctx = request.app[CTX]
    data = await export.collect(ctx.db, patient_id)
    async with ctx.db.session() as session:
        await audit.record(
            session,
            current_user(request),
            AuditAction.EXPORT,
            patient_id=patient_id,
            ip=client_ip(request),
            format=fmt,
        )
    headers = {"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'}
    if fmt == "html":
        return web.Response(
            text=export.render_html(data), content_type="text/html", headers=headers
        )
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, indent=2),
        content_type="application/json",
        headers=headers,
    )


async def my_export(request: web.Request) -> web.Response:
    return await _export(request, current_user(request).id, "json", OWN_EXPORT)


async def my_export_html(request: web.Request) -> web.Response:
    return await _export(request, current_user(request).id, "html", OWN_EXPORT)


async def patient_export(request: web.Request) -> web.Response:
    current_admin(request)
    patient_id = _patient_in_path(request)
    return await _export(request, patient_id, "json", f"dados-paciente-{patient_id}")


async def patient_export_html(request: web.Request) -> web.Response:
    current_admin(request)
    patient_id = _patient_in_path(request)
    return await _export(request, patient_id, "html", f"dados-paciente-{patient_id}")


# --- Erasure ---------------------------------------------------------------------------------


def _erased(result: erasure.Erasure) -> dict[str, Any]:
    return {"erased": list(result.patient_ids)}


async def erase_me(request: web.Request) -> web.Response:
    """The patient's own erasure, confirmed with their password; the session ends with it."""
    patient = current_user(request)
    body = await read_json(request)
    password = body.get("password")
    if not isinstance(password, str) or not await password_matches(password, patient.password_hash):
        raise WrongPassword()
    result = await erasure.erase_patient(
        request.app[CTX],
        patient.id,
        actor=patient,
        channel=PORTAL_CHANNEL,
        ip=client_ip(request),
    )
    response = web.json_response(_erased(result))
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def erase_patient(request: web.Request) -> web.Response:
    admin = current_admin(request)
    result = await erasure.erase_patient(
        request.app[CTX],
        _patient_in_path(request),
        actor=admin,
        channel=ADMIN_CHANNEL,
        ip=client_ip(request),
    )
    return web.json_response(_erased(result))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/portal/consents", consents)
    app.router.add_post(r"/api/portal/consents/{purpose:[a-z]+}", grant_consent)
    app.router.add_post(r"/api/portal/consents/{purpose:[a-z]+}/withdraw", withdraw_consent)
    app.router.add_get("/api/portal/export", my_export)
    app.router.add_get("/api/portal/export.html", my_export_html)
    app.router.add_post("/api/portal/erase", erase_me)
    app.router.add_get(r"/api/admin/patients/{id:\d+}/export", patient_export)
    app.router.add_get(r"/api/admin/patients/{id:\d+}/export.html", patient_export_html)
    app.router.add_post(r"/api/admin/patients/{id:\d+}/erase", erase_patient)
