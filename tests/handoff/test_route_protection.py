"""Default-deny: every route registered on the web app, walked without a login (and with a
patient's), is refused unless it is on the short public list."""

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.webapp import patient_logged_in, web_server

PASSWORD = "senha-segura"
# Reviewed one by one: what anyone on the internet may reach.
PUBLIC = {
    ("GET", "/"),
    ("GET", "/login"),
    ("GET", "/cadastro"),
    ("POST", "/api/login"),
    ("POST", "/api/logout"),
    # The code after the password: refused without the signed token the password step gave.
    ("POST", "/api/login/second-factor"),
    ("POST", "/api/signup"),
    # The pages a mailed link opens (the token in the link decides), and the reset request.
    ("GET", "/verificar-email"),
    ("POST", "/api/verify-email"),
    ("GET", "/redefinir-senha"),
    ("POST", "/api/password-reset"),
    ("POST", "/api/password-reset/confirm"),
    ("GET", "/catalog.json"),
    ("GET", "/api/openapi.json"),  # the API's contract: shapes, no data
    ("GET", "/healthz"),
    ("POST", "/internal/events"),  # refused without the internal token, by its handler
    ("POST", "/internal/webchat/deliver"),  # likewise
    # Provider webhooks: each verifies its provider's signature on the raw bytes.
    ("GET", "/webhooks/1/webhook"),
    ("POST", "/webhooks/1/webhook"),
    # The site widget, for anonymous visitors of the clinic's site.
    ("GET", "/webhooks/webchat/widget.js"),
    ("GET", "/webhooks/webchat/widget.css"),
    ("GET", "/webhooks/webchat/ws"),
    # A file the widget attaches: the visitor's token (or the portal session) decides.
    ("POST", "/webhooks/webchat/files"),
    # A file a provider fetches to send it: the signed, expiring link decides.
    ("GET", "/files/1"),
    ("GET", "/static/app.css"),
    ("GET", "/static/vendor/chart.umd.min.js"),  # Chart.js as npm installed it, like /static/
}


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    async with web_server(settings) as server:
        yield server


def _routes(app: web.Application) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, with ids filled in and a real static file."""
    routes = set()
    for resource in app.router.resources():
        if isinstance(resource, web.StaticResource):
            path = resource.canonical + "/app.css"
        else:
            path = re.sub(r"\{[^}]+\}", "1", resource.canonical)
        routes |= {(route.method, path) for route in resource if route.method != "HEAD"}
    return sorted(routes)


async def _answers(server: TestServer, http: aiohttp.ClientSession) -> dict[tuple, str]:
    """How each route answered: "login" (sent to the login page, or 401 from the API),
    "forbidden" (403), or "through" (the request reached its handler)."""
    answers = {}
    for method, path in _routes(server.app):
        async with http.request(method, path, json={}, allow_redirects=False) as response:
            refused = response.status in (401, 403)
            code = (await response.json()).get("code") if refused else None
        if (response.status, response.headers.get("Location")) == (302, "/login"):
            answers[method, path] = "login"
        elif path.startswith("/api/") and code in ("error.unauthenticated", "error.forbidden"):
            answers[method, path] = "login" if code == "error.unauthenticated" else "forbidden"
        else:
            answers[method, path] = "through"
    return answers


async def test_without_a_login_every_route_but_the_public_ones_is_refused(server):
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        answers = await _answers(server, http)

    assert len(answers) > 40 and answers.keys() >= PUBLIC  # the walk covers the app
    refused = {route for route, answer in answers.items() if answer == "login"}
    assert refused == answers.keys() - PUBLIC


async def test_an_unknown_path_needs_a_login_too(server):
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        async with http.get("/nada-aqui", allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (302, "/login")
        async with http.get("/api/nada-aqui") as response:
            assert response.status == 401


async def test_a_patient_reaches_only_the_public_routes_and_the_portal(server):
    http = await patient_logged_in(server, PASSWORD)
    try:
        answers = await _answers(server, http)
    finally:
        await http.close()

    portal = {(m, p) for m, p in answers if p == "/portal" or p.startswith("/api/portal/")}
    # Their own password (the POST is walked after /api/logout ended the session).
    own_account = {("GET", "/conta/senha"), ("POST", "/api/password")}
    assert answers["GET", "/conta/senha"] == "through"
    staff_only = answers.keys() - PUBLIC - portal - own_account
    assert staff_only and all(answers[route] != "through" for route in staff_only)
    assert answers["GET", "/api/portal/me"] == answers["GET", "/portal"] == "through"
