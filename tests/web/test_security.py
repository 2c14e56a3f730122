"""What every response tells the browser (a strict CSP, nosniff, no framing, a referrer
policy, HSTS on https), the widget's files readable by the clinic sites only, and the staff
socket refusing pages of other sites."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from core.settings import Settings
from models import Role
from tests.factories import staff
from tests.webapp import logged_in, patient_logged_in, web_server
from web.keys import CTX
from web.pages import STATIC

PASSWORD = "senha-segura"
CLINIC_SITE = "https://www.clinicavidaplena.example"
ANONYMOUS_PAGES = [
    "/",
    "/login",
    "/cadastro",
    "/catalog.json",
    "/healthz",
    "/static/app.css",
    "/static/staff.js",
    "/webhooks/webchat/widget.js",
    "/webhooks/webchat/widget.css",
    "/staff",  # a redirect to the login page
    "/api/conversations",  # 401
    "/no-such-page",  # 404
]
STAFF_PAGES = ["/staff", "/staff/agenda", "/staff/admin", "/staff/metrics", "/api/me"]


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[TestServer]:
    with_sites = replace(settings, widget_origins=(CLINIC_SITE,))
    async with web_server(with_sites) as server:
        yield server


def _assert_protected(response: aiohttp.ClientResponse) -> None:
    csp = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split(";")
    )
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == csp["object-src"] == csp["base-uri"] == "'none'"
    assert csp["connect-src"].startswith("'self' ws://")
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain http here


async def _get(http: aiohttp.ClientSession, path: str) -> aiohttp.ClientResponse:
    async with http.get(path, allow_redirects=False) as response:
        await response.read()
        return response


async def test_every_kind_of_response_carries_the_security_headers(server):
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        for path in ANONYMOUS_PAGES:
            _assert_protected(await _get(http, path))
    ctx = server.app[CTX]
    admin = await staff(ctx.db, Role.ADMIN)
    async with await logged_in(server, admin.email, PASSWORD) as http:
        for path in STAFF_PAGES:
            response = await _get(http, path)
            assert response.status == 200, path
            _assert_protected(response)
    async with await patient_logged_in(server, PASSWORD) as http:
        for path in ("/portal", "/api/portal/me"):
            response = await _get(http, path)
            assert response.status == 200, path
            _assert_protected(response)


async def test_hsts_is_sent_when_the_public_address_is_https(settings):
    public = replace(settings, public_base_url="https://clinica.example")
    async with (
        web_server(public) as server,
        aiohttp.ClientSession(base_url=str(server.make_url(""))) as http,
    ):
        response = await _get(http, "/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_the_widget_files_are_readable_from_the_clinic_sites_only(server):
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        for path in ("/webhooks/webchat/widget.js", "/webhooks/webchat/widget.css"):
            async with http.get(path, headers={"Origin": CLINIC_SITE}) as allowed:
                assert allowed.headers["Access-Control-Allow-Origin"] == CLINIC_SITE
                assert allowed.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
            async with http.get(path, headers={"Origin": "https://golpe.example"}) as other:
                assert "Access-Control-Allow-Origin" not in other.headers
        async with http.get("/login", headers={"Origin": CLINIC_SITE}) as page:
            assert "Access-Control-Allow-Origin" not in page.headers
            assert page.headers["Cross-Origin-Resource-Policy"] == "same-origin"


@pytest.mark.parametrize("page", sorted(path.name for path in STATIC.glob("*.html")))
def test_no_page_has_inline_script_or_style(page):
    html = (STATIC / page).read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", html, re.IGNORECASE)


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://golpe.example", 403),
        ("null", 403),
        (CLINIC_SITE, 403),  # the widget's sites are no staff pages
        ("http://127.0.0.1:8000", 101),  # the platform's own (WEB_URL, PUBLIC_BASE_URL)
    ],
)
async def test_the_staff_socket_opens_only_from_the_platforms_own_pages(server, origin, status):
    admin = await staff(server.app[CTX].db, Role.ADMIN)
    async with await logged_in(server, admin.email, PASSWORD) as http:
        if status == 403:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect("/api/ws", headers={"Origin": origin})
            assert refused.value.status == 403
        else:
            async with http.ws_connect("/api/ws", headers={"Origin": origin}) as ws:
                assert not ws.closed
