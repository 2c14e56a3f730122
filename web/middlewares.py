"""Authentication and pt-BR JSON errors.

Every refusal is a `core.errors.ClinicError` raised where it is decided (a view, a domain
function, the auth check below); `error_middleware` is the one place that answers it, with its
status and `{"error": <pt-BR text>, "code": <catalog key>}`.

Protection is default-deny: a path is open to anyone only when it is listed here as public,
open to patients only under the portal's paths, and everything else, including any route
added later and any unknown path, needs a staff login."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from accounts.auth import user_for_token
from accounts.second_factor import must_enrol
from core.catalog import t
from core.errors import (
    BadRequest,
    ClinicError,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
)
from core.logs import log_failure
from models import Role
from web.account import ENROLMENT_PATHS, SECURITY_PAGE
from web.keys import CTX, SESSION_COOKIE, SETTINGS, USER, id_from

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC_PATHS = {
    "/",  # the clinic's page, with the chat widget
    "/login",
    "/cadastro",  # patient sign-up
    "/api/login",
    "/api/logout",
    "/api/login/second-factor",  # the code after the password (a signed pending token)
    "/api/signup",
    "/verificar-email",  # the pages a mailed link opens, and their calls
    "/api/verify-email",
    "/redefinir-senha",
    "/api/password-reset",
    "/api/password-reset/confirm",
    "/api/openapi.json",  # the API's contract: shapes, no data
    "/catalog.json",  # the pt-BR texts of the pages
    "/healthz",
    "/internal/events",  # checks the internal token itself
    "/internal/webchat/deliver",  # likewise
}
# Provider webhooks verify their own signatures; the widget is for anonymous visitors.
# Signed links to files (`messaging.files.signed_link`) check their own signature.
PUBLIC_PREFIXES = ("/static/", "/webhooks/", "/files/")
# Any logged-in user, staff or patient: their own password.
SIGNED_IN_PATHS = {"/conta/senha", "/api/password"}
# All a staff member who must enrol a second factor and has not may reach.
CONFINED_PATHS = ENROLMENT_PATHS | SIGNED_IN_PATHS
PATIENT_PATHS = {"/portal"}
PATIENT_PREFIXES = ("/portal/", "/api/portal/")


def _answer(status: int, code: str, **values: object) -> web.Response:
    return web.json_response({"error": t(code, **values), "code": code}, status=status)


# aiohttp's own refusals (no such route, a method the route lacks, a body over the limit, a
# socket handshake that is not one), in the API's shape like every other refusal.
_HTTP_ERROR_CODES = {
    404: NotFound.code,
    405: "error.method_not_allowed",
    413: "error.too_large",
}


def _http_error(exc: web.HTTPException) -> web.Response:
    response = _answer(exc.status, _HTTP_ERROR_CODES.get(exc.status, "error.bad_request"))
    if "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ClinicError as error:
        response = _answer(error.status, error.code, **error.values)
        if isinstance(error, TooManyRequests):
            response.headers["Retry-After"] = str(error.retry_after)
        return response
    except (json.JSONDecodeError, UnicodeDecodeError):  # a body that is not JSON text
        return _answer(BadRequest.status, BadRequest.code)
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            return _http_error(exc)
        raise  # redirects, and aiohttp's own 4xx answers to pages
    except Exception as exc:
        log_failure(log, exc, "%s %s failed", request.method, request.path)
        return _answer(500, "error.internal")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[USER] = None
    path = request.path
    public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
    confined = False
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with request.app[CTX].db.session() as session:
            user = await user_for_token(session, token, idle=request.app[SETTINGS].session_idle)
            request[USER] = user
            if user is not None and user.is_staff and not public:
                confined = path not in CONFINED_PATHS and await must_enrol(session, user)
    if public:
        return await handler(request)
    if confined:
        # The policy asks this account for a second factor it has not enrolled yet.
        if path.startswith("/api/"):
            raise Forbidden("error.second_factor_required")
        raise web.HTTPFound(SECURITY_PAGE)
    user = request[USER]
    if path in SIGNED_IN_PATHS:
        allowed = user is not None
    elif path in PATIENT_PATHS or path.startswith(PATIENT_PREFIXES):
        allowed = user is not None and user.role == Role.PATIENT
    else:
        allowed = user is not None and user.is_staff
    if allowed:
        if "id" in request.match_info and id_from(request.match_info["id"]) is None:
            raise NotFound()  # an id no row can have
        return await handler(request)
    if path.startswith("/api/"):
        raise Unauthenticated() if user is None else Forbidden()
    raise web.HTTPFound("/login")
