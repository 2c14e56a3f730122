"""Authentication and pt-BR JSON errors.

Protection is default-deny: a path is open to anyone only when it is listed here as public,
open to patients only under the portal's paths, and everything else, including any route
added later and any unknown path, needs a staff login."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from accounts.auth import user_for_token
from core.catalog import t
from core.logs import log_failure
from handoff.transitions import TransitionError
from models import Role
from web.keys import CTX, SESSION_COOKIE

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC_PATHS = {
    "/",  # the clinic's page, with the chat widget
    "/login",
    "/cadastro",  # patient sign-up
    "/api/login",
    "/api/logout",
    "/api/signup",
    "/catalog.json",  # the pt-BR texts of the pages
    "/healthz",
    "/internal/events",  # checks the internal token itself
    "/internal/webchat/deliver",  # likewise
}
# Provider webhooks verify their own signatures; the widget is for anonymous visitors.
PUBLIC_PREFIXES = ("/static/", "/webhooks/")
PATIENT_PATHS = {"/portal"}
PATIENT_PREFIXES = ("/portal/", "/api/portal/")


def json_error(status: int, key: str, **values: object) -> web.Response:
    return web.json_response({"error": t(key, **values), "code": key}, status=status)


class ApiError(Exception):
    def __init__(self, status: int, key: str, **values: object) -> None:
        super().__init__(key)
        self.status, self.key, self.values = status, key, values


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return json_error(error.status, error.key, **error.values)
    except TransitionError as error:
        return json_error(error.status, error.code)
    except json.JSONDecodeError:
        return json_error(400, "error.invalid_json")
    except web.HTTPException:
        raise  # redirects and aiohttp's own 4xx answers
    except Exception as exc:
        log_failure(log, exc, "%s %s failed", request.method, request.path)
        return json_error(500, "error.internal")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request["user"] = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with request.app[CTX].db.session() as session:
            request["user"] = await user_for_token(session, token)
    path = request.path
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    user = request["user"]
    if path in PATIENT_PATHS or path.startswith(PATIENT_PREFIXES):
        allowed = user is not None and user.role == Role.PATIENT
    else:
        allowed = user is not None and user.is_staff
    if allowed:
        return await handler(request)
    if path.startswith("/api/"):
        if user is None:
            return json_error(401, "error.unauthenticated")
        return json_error(403, "error.forbidden")
    raise web.HTTPFound("/login")
