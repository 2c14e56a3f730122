"""Logins, passwords and sessions over real HTTP: the attacks of issue 13 replayed."""

from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import update

import accounts.auth
from models import AccountToken, LoginSession, Role, utcnow
from tests.factories import staff
from tests.webapp import logged_in, mail_through, mailed_link, mails_to, token_of, web_server
from web.keys import CTX

PASSWORD = "senha-segura"


@pytest.fixture
async def server(settings, smtp_server) -> AsyncIterator:
    async with web_server(settings) as server:
        mail_through(server, smtp_server)
        yield server


def _client(server) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=str(server.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )


async def _login(http, email, password) -> tuple[int, dict, dict]:
    async with http.post("/api/login", json={"email": email, "password": password}) as response:
        return response.status, dict(response.headers), await response.json()


async def test_the_eleventh_failure_is_refused_until_an_admin_lifts_the_lock(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, Role.ATTENDANT, password=PASSWORD)
    admin = await staff(ctx.db, Role.ADMIN, password=PASSWORD)
    attacker = _client(server)
    try:
        for _ in range(10):
            assert (await _login(attacker, ana.email, "chute"))[0] == 401
        status, headers, _ = await _login(attacker, ana.email, PASSWORD)
        assert status == 429
        assert 0 < int(headers["Retry-After"]) <= 15 * 60
    finally:
        await attacker.close()

    admin_http = await logged_in(server, admin.email, PASSWORD)
    try:
        async with admin_http.get("/api/admin/staff") as response:
            listed = {u["id"]: u["locked_for"] for u in await response.json()}
        assert listed[ana.id] > 0 and listed[admin.id] == 0
        async with admin_http.post(f"/api/admin/staff/{ana.id}/unlock") as response:
            assert response.status == 200
    finally:
        await admin_http.close()
    await (await logged_in(server, ana.email, PASSWORD)).close()


async def test_a_flood_from_one_address_does_not_lock_out_a_known_browser(server):
    ctx = server.app[CTX]
    bia = await staff(ctx.db, Role.ATTENDANT, password=PASSWORD)
    bias_browser = await logged_in(server, bia.email, PASSWORD)  # gets the device cookie
    attacker, newcomer = _client(server), _client(server)
    try:
        # A spray over many addresses from the same client address locks that address...
        for n in range(30):
            assert (await _login(attacker, f"alvo{n}@clinica.test", "chute"))[0] == 401
        assert (await _login(attacker, "alvo99@clinica.test", "chute"))[0] == 429
        assert (await _login(newcomer, bia.email, PASSWORD))[0] == 429
        # ...but not the browser Bia logged in from before.
        assert (await _login(bias_browser, bia.email, PASSWORD))[0] == 200
    finally:
        for http in (bias_browser, attacker, newcomer):
            await http.close()


async def test_unknown_and_known_addresses_get_the_same_answer_after_the_same_work(
    server, monkeypatch
):
    ana = await staff(server.app[CTX].db, Role.ATTENDANT, password=PASSWORD)
    hashed = []
    real = accounts.auth._scrypt
    monkeypatch.setattr(accounts.auth, "_scrypt", lambda *args: hashed.append(1) or real(*args))
    http = _client(server)
    try:
        answers = []
        for email in (ana.email, "ninguem@clinica.test"):
            before = len(hashed)
            status, _, body = await _login(http, email, "senha-errada")
            answers.append((status, body, len(hashed) - before))
    finally:
        await http.close()
    assert answers[0] == answers[1]
    assert answers[0][0] == 401 and answers[0][2] == 1  # one scrypt, account or not


async def test_a_password_change_ends_the_other_sessions(server):
    ana = await staff(server.app[CTX].db, Role.ATTENDANT, password=PASSWORD)
    here = await logged_in(server, ana.email, PASSWORD)
    elsewhere = await logged_in(server, ana.email, PASSWORD)
    try:
        change = {"current": "errada", "new": "nova-senha-forte"}
        async with here.post("/api/password", json=change) as response:
            assert response.status == 400
        change["current"] = PASSWORD
        async with here.post("/api/password", json=change) as response:
            assert response.status == 200
        async with here.get("/api/me") as response:
            assert response.status == 200
        async with elsewhere.get("/api/me") as response:
            assert response.status == 401
    finally:
        await here.close()
        await elsewhere.close()
    await (await logged_in(server, ana.email, "nova-senha-forte")).close()


async def test_a_reset_link_works_once_and_the_answer_never_tells_who_has_an_account(
    server, smtp_server
):
    ana = await staff(server.app[CTX].db, Role.ATTENDANT, password=PASSWORD)
    session_before = await logged_in(server, ana.email, PASSWORD)
    http = _client(server)
    try:
        answers = []
        for email in (ana.email, "ninguem@clinica.test"):
            async with http.post("/api/password-reset", json={"email": email}) as response:
                answers.append((response.status, await response.json()))
        assert answers[0] == answers[1]
        assert answers[0][1]["message"].startswith("Se houver um cadastro com este e-mail")
        assert await mails_to(server, smtp_server, "ninguem@clinica.test") == []

        token = token_of(await mailed_link(server, smtp_server, ana.email))
        new = {"token": token, "password": "nova-senha-forte"}
        async with http.post("/api/password-reset/confirm", json=new) as response:
            assert response.status == 200
        async with http.post("/api/password-reset/confirm", json=new) as response:
            assert (response.status, (await response.json())["code"]) == (
                400,
                "error.invalid_link",
            )
        async with session_before.get("/api/me") as response:
            assert response.status == 401  # a reset ends every session
    finally:
        await http.close()
        await session_before.close()
    await (await logged_in(server, ana.email, "nova-senha-forte")).close()


async def test_a_reset_link_expires(server, smtp_server):
    ana = await staff(server.app[CTX].db, Role.ATTENDANT, password=PASSWORD)
    http = _client(server)
    try:
        async with http.post("/api/password-reset", json={"email": ana.email}) as response:
            assert response.status == 202
        token = token_of(await mailed_link(server, smtp_server, ana.email))
        async with server.app[CTX].db.session() as session:
            await session.execute(update(AccountToken).values(expires_at=utcnow()))
        new = {"token": token, "password": "nova-senha-forte"}
        async with http.post("/api/password-reset/confirm", json=new) as response:
            assert response.status == 400
    finally:
        await http.close()


async def test_an_idle_session_ends(server):
    ana = await staff(server.app[CTX].db, Role.ATTENDANT, password=PASSWORD)
    http = await logged_in(server, ana.email, PASSWORD)
    try:
        async with http.get("/api/me") as response:
            assert response.status == 200
        idle = server.app[CTX].settings.session_idle
        async with server.app[CTX].db.session() as session:
            await session.execute(update(LoginSession).values(last_seen_at=utcnow() - idle))
        async with http.get("/api/me") as response:
            assert response.status == 401
    finally:
        await http.close()


async def test_cookies_are_secure_when_the_public_address_is_https(settings, smtp_server):
    https = settings.__class__(**{**vars(settings), "public_base_url": "https://clinica.test"})
    async with web_server(https) as server:
        ana = await staff(server.app[CTX].db, Role.ATTENDANT, password=PASSWORD)
        http = _client(server)
        try:
            async with http.post(
                "/api/login", json={"email": ana.email, "password": PASSWORD}
            ) as response:
                cookies = response.headers.getall("Set-Cookie")
        finally:
            await http.close()
    assert len(cookies) == 2
    for cookie in cookies:
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
