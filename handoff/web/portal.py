"""The patient portal: sign-up, "Meus dados" and the data export."""

from __future__ import annotations

import json

from aiohttp import web

from handoff import patients
from handoff.auth import open_session
from handoff.web.api import read_json
from handoff.web.keys import CTX, SESSION_COOKIE, current_user
from handoff.web.middlewares import ApiError
from handoff.web.pages import render_page


def _fail(error: patients.PatientError) -> ApiError:
    status = 409 if error.code in ("error.email_taken", "error.cpf_taken") else 400
    return ApiError(status, error.code, **error.values)


async def signup_page(_request: web.Request) -> web.Response:
    return render_page("signup.html")


async def portal_page(_request: web.Request) -> web.Response:
    return render_page("portal.html")


async def signup(request: web.Request) -> web.Response:
    body = await read_json(request)
    ctx = request.app[CTX]
    try:
        patient = await patients.sign_up(
            ctx.db,
            name=body.get("name"),
            email=body.get("email"),
            phone=body.get("phone"),
            cpf=body.get("cpf"),
            password=body.get("password"),
            consent=body.get("consent"),
        )
    except patients.PatientError as error:
        raise _fail(error) from None
    async with ctx.db.session() as session:
        token = await open_session(session, patient)
    response = web.json_response({"id": patient.id}, status=201)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/")
    return response


async def me(request: web.Request) -> web.Response:
    patient = await patients.load_patient(request.app[CTX].db, current_user(request).id)
    return web.json_response(patients.profile_view(patient))


async def update_me(request: web.Request) -> web.Response:
    body = await read_json(request)
    try:
        patient = await patients.update_contact(
            request.app[CTX].db,
            current_user(request).id,
            name=body.get("name"),
            phone=body.get("phone"),
        )
    except patients.PatientError as error:
        raise _fail(error) from None
    return web.json_response(patients.profile_view(patient))


async def export(request: web.Request) -> web.Response:
    data = await patients.export_data(request.app[CTX].db, current_user(request).id)
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, indent=2),
        content_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="meus-dados.json"'},
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/cadastro", signup_page)
    app.router.add_get("/portal", portal_page)
    app.router.add_post("/api/signup", signup)
    app.router.add_get("/api/portal/me", me)
    app.router.add_patch("/api/portal/me", update_me)
    app.router.add_get("/api/portal/export", export)
