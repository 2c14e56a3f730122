"""Accounts on the web: login (with the staff second factor) and logout, patient sign-up and
its e-mail verification, password change and reset, the staff's account-security page, and
their pages. The decisions live in `accounts`; here, the
cookies and the mail posted in the background (`accounts.mail.Postbox`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from accounts import passwords, patients, second_factor, throttle
from accounts.auth import close_session
from accounts.login import CodeNeeded, LoggedIn, attempt_login, attempt_second_factor
from accounts.mail import Postbox
from accounts.tokens import RESET_PAGE, VERIFY_PAGE
from core import audit
from core.audit import AuditAction
from core.catalog import t
from core.contacts import normalize_email
from core.errors import BadRequest
from core.settings import Settings
from web import live
from web.api import read_json
from web.keys import CTX, SESSION_COOKIE, SETTINGS, USER, client_ip, current_user
from web.pages import render_page

POSTBOX = web.AppKey("postbox", Postbox)
DEVICE_COOKIE = "oc_device"
DEVICE_LIFETIME = timedelta(days=365)
PASSWORD_PAGE = "/conta/senha"  # noqa: S105 (an address)
SECURITY_PAGE = "/staff/seguranca"
# What a staff member the policy confines to enrolment may still reach (web/middlewares.py).
SECOND_FACTOR_API = "/api/account/second-factor"
ENROLMENT_PATHS = frozenset(
    {
        SECURITY_PAGE,
        SECOND_FACTOR_API,
        f"{SECOND_FACTOR_API}/enrolment",
        f"{SECOND_FACTOR_API}/confirm",
    }
)


def _set_cookie(
    response: web.StreamResponse,
    settings: Settings,
    name: str,
    value: str,
    *,
    lifetime: timedelta | None = None,
    path: str = "/",
) -> None:
    """HttpOnly, SameSite=Strict, Secure whenever the clinic is on https; without a
    `lifetime`, gone when the browser closes."""
    response.set_cookie(
        name,
        value,
        max_age=int(lifetime.total_seconds()) if lifetime else None,
        path=path,
        httponly=True,
        samesite="Strict",
        secure=settings.https,
    )


async def login(request: web.Request) -> web.Response:
    """The session, or for an account with a second factor `{"second_factor": true,
    "pending": <token>}` and no cookie: the code goes to /api/login/second-factor."""
    body = await read_json(request)
    attempt = await attempt_login(
        request.app[CTX],
        request.app[POSTBOX],
        str(body.get("email", "")),
        str(body.get("password", "")),
        ip=client_ip(request),
        device=request.cookies.get(DEVICE_COOKIE),
    )
    if isinstance(attempt, CodeNeeded):
        return web.json_response({"second_factor": True, "pending": attempt.pending})
    return _session_opened(request, attempt)


async def login_second_factor(request: web.Request) -> web.Response:
    body = await read_json(request)
    logged_in = await attempt_second_factor(
        request.app[CTX],
        body.get("pending"),
        body.get("code"),
        ip=client_ip(request),
        device=request.cookies.get(DEVICE_COOKIE),
    )
    return _session_opened(request, logged_in)


def _session_opened(request: web.Request, logged_in: LoggedIn) -> web.Response:
    settings = request.app[SETTINGS]
    user = logged_in.user
    response = web.json_response({"id": user.id, "role": str(user.role)})
    _set_cookie(response, settings, SESSION_COOKIE, logged_in.token)
    _set_cookie(
        response,
        settings,
        DEVICE_COOKIE,
        logged_in.device,
        lifetime=DEVICE_LIFETIME,
        path="/api/login",
    )
    return response


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    user = request[USER]
    if token:
        async with request.app[CTX].db.session() as session:
            await close_session(session, token)
            if user is not None:
                await audit.record(session, user, AuditAction.LOGOUT, ip=client_ip(request))
    if user is not None:
        await live.close_revoked_sockets(request.app, user.id)
    response = web.json_response({})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def signup(request: web.Request) -> web.Response:
    """The same answer (202) whether the account was created or the e-mail or CPF already
    had one: only the mailbox learns which."""
    body = await read_json(request)
    ctx = request.app[CTX]
    form = patients.check_sign_up(
        name=body.get("name"),
        email=body.get("email"),
        phone=body.get("phone"),
        cpf=body.get("cpf"),
        password=body.get("password"),
        consent=body.get("consent"),
    )
    await throttle.spend_mail(
        ctx.limits, ctx.settings.session_secret, "signup", client_ip(request), form.email, form.cpf
    )
    request.app[POSTBOX].post(await patients.sign_up(ctx, form))
    return web.json_response({"message": t("signup.check_email")}, status=202)


async def verify_email(request: web.Request) -> web.Response:
    token = (await read_json(request)).get("token")
    if not isinstance(token, str):
        raise BadRequest("error.invalid_link")
    await patients.verify_email(request.app[CTX].db, token)
    return web.json_response({"message": t("verify.done")})


async def request_reset(request: web.Request) -> web.Response:
    """The same answer whether or not the address has an account."""
    email = normalize_email(str((await read_json(request)).get("email", "")))
    if email is None:
        raise BadRequest("error.invalid_email")
    ctx = request.app[CTX]
    await throttle.spend_mail(
        ctx.limits, ctx.settings.session_secret, "reset", client_ip(request), email
    )
    request.app[POSTBOX].post(await passwords.request_reset(ctx, email))
    return web.json_response(
        {"message": t("reset.sent", minutos=passwords.RESET_MINUTES)}, status=202
    )


async def reset_password(request: web.Request) -> web.Response:
    body = await read_json(request)
    token = body.get("token")
    if not isinstance(token, str):
        raise BadRequest("error.invalid_link")
    user = await passwords.reset_password(request.app[CTX], token, body.get("password"))
    await live.close_revoked_sockets(request.app, user.id)
    return web.json_response({"message": t("reset.done")})


async def change_password(request: web.Request) -> web.Response:
    body = await read_json(request)
    user = current_user(request)
    await passwords.change_password(
        request.app[CTX],
        user.id,
        body.get("current"),
        body.get("new"),
        session_token=request.cookies[SESSION_COOKIE],
    )
    await live.close_revoked_sockets(request.app, user.id)
    return web.json_response({"message": t("password.saved")})


async def security_page(_request: web.Request) -> web.Response:
    return render_page("security.html")


async def second_factor_status(request: web.Request) -> web.Response:
    """GET: `{"active": bool, "required": bool}` for the logged-in staff member."""
    async with request.app[CTX].db.session() as session:
        found = await second_factor.status(session, current_user(request))
    return web.json_response({"active": found.active, "required": found.required})


async def start_enrolment(request: web.Request) -> web.Response:
    """A new pending key: its QR code (SVG), the key as text and its otpauth URI."""
    ctx = request.app[CTX]
    enrolment = await second_factor.start_enrolment(
        ctx.db, ctx.settings.data_keys, current_user(request)
    )
    return web.json_response(
        {"secret": enrolment.secret, "uri": enrolment.uri, "qr_svg": enrolment.qr_svg}
    )


async def confirm_enrolment(request: web.Request) -> web.Response:
    """The first code activates the key; the recovery codes are in this answer only."""
    body = await read_json(request)
    ctx = request.app[CTX]
    codes = await second_factor.confirm_enrolment(
        ctx.db,
        ctx.settings.data_keys,
        current_user(request),
        body.get("code"),
        ip=client_ip(request),
    )
    return web.json_response({"recovery_codes": codes})


async def signup_page(_request: web.Request) -> web.Response:
    return render_page("signup.html")


async def verify_page(_request: web.Request) -> web.Response:
    return render_page("verify.html")


async def reset_page(_request: web.Request) -> web.Response:
    return render_page("reset.html")


async def password_page(request: web.Request) -> web.Response:
    user = current_user(request)
    return render_page("password.html", back="/staff" if user.is_staff else "/portal")


async def postbox(app: web.Application) -> AsyncIterator[None]:
    """Account mail leaves in the background; what is on its way when the process stops is
    sent first."""
    app[POSTBOX] = Postbox(app[CTX])
    yield
    await app[POSTBOX].drain()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(postbox)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/login/second-factor", login_second_factor)
    app.router.add_post("/api/logout", logout)
    app.router.add_get(SECURITY_PAGE, security_page)
    app.router.add_get(SECOND_FACTOR_API, second_factor_status)
    app.router.add_post(f"{SECOND_FACTOR_API}/enrolment", start_enrolment)
    app.router.add_post(f"{SECOND_FACTOR_API}/confirm", confirm_enrolment)
    app.router.add_get("/cadastro", signup_page)
    app.router.add_post("/api/signup", signup)
    app.router.add_get(f"/{VERIFY_PAGE}", verify_page)
    app.router.add_post("/api/verify-email", verify_email)
    app.router.add_get(f"/{RESET_PAGE}", reset_page)
    app.router.add_post("/api/password-reset", request_reset)
    app.router.add_post("/api/password-reset/confirm", reset_password)
    app.router.add_get(PASSWORD_PAGE, password_page)
    app.router.add_post("/api/password", change_password)
