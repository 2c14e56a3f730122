"""The web app on a real local HTTP server, with deliveries and Rasa calls recorded."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pyotp
from aiohttp.test_utils import TestServer

from accounts.auth import hash_password
from channels.email import EmailChannel, EmailConfig
from core.settings import Settings
from models import User, utcnow
from processes.web import create_app
from tests.channels.mail_servers import SmtpServer
from tests.factories import patient_message
from tests.fakes import RecordingBot, RecordingSender
from web.account import POSTBOX
from web.keys import CTX

CLINIC_FROM = "Clínica Teste <clinica@clinica.test>"
_LINK = re.compile(r"https?://\S+#token=[\w-]+")


@asynccontextmanager
async def web_server(settings: Settings) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(settings))
    await server.start_server()
    ctx = server.app[CTX]
    ctx.senders = {"webchat": RecordingSender()}
    ctx.bot = RecordingBot()
    try:
        yield server
    finally:
        await server.close()


@dataclass
class Enrolled:
    """A second factor as its owner saw it at enrolment."""

    secret: str
    recovery_codes: list[str]

    def code(self) -> str:
        return pyotp.TOTP(self.secret).now()


# Second factors this helper enrolled, by server and address: later logins of the account
# spend one of its recovery codes (a TOTP code is good once per 30 s step).
_ENROLLED: dict[tuple[str, str], Enrolled] = {}


async def enrol_second_factor(http: aiohttp.ClientSession) -> Enrolled:
    """Enrol the logged-in staff member through the security page's calls."""
    async with http.post("/api/account/second-factor/enrolment") as response:
        assert response.status == 200, await response.text()
        secret = (await response.json())["secret"]
    code = pyotp.TOTP(secret).now()
    async with http.post("/api/account/second-factor/confirm", json={"code": code}) as response:
        assert response.status == 200, await response.text()
        return Enrolled(secret, (await response.json())["recovery_codes"])


async def logged_in(server: TestServer, email: str, password: str) -> aiohttp.ClientSession:
    """A logged-in session. Staff whom the clinic's policy asks for a second factor are
    enrolled at their first login, as the security page would, and give a recovery code at
    the next ones; the default policy (managers and admins) stays on."""
    base = str(server.make_url(""))
    http = aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post("/api/login", json={"email": email, "password": password}) as response:
        assert response.status == 200, await response.text()
        step = await response.json()
    if step.get("second_factor"):
        enrolled = _ENROLLED.get((base, email))
        assert enrolled and enrolled.recovery_codes, f"no code known for {email}'s second factor"
        body = {"pending": step["pending"], "code": enrolled.recovery_codes.pop()}
        async with http.post("/api/login/second-factor", json=body) as response:
            assert response.status == 200, await response.text()
            step = await response.json()
    if step["role"] != "patient":
        async with http.get("/api/account/second-factor") as response:
            status = await response.json()
        if status["required"] and not status["active"]:
            _ENROLLED[base, email] = await enrol_second_factor(http)
    return http


async def patient_logged_in(server: TestServer, password: str) -> aiohttp.ClientSession:
    """A patient who wrote to the clinic and then signed up, logged in."""
    ctx = server.app[CTX]
    recorded = await patient_message(ctx.db)
    async with ctx.db.session() as session:
        patient = await session.get(User, recorded.message.patient_id)
        patient.email = "paciente@exemplo.com"
        patient.email_verified_at = utcnow()
        patient.password_hash = hash_password(password)
    return await logged_in(server, "paciente@exemplo.com", password)


def mail_through(server: TestServer, smtp: SmtpServer) -> None:
    """Account mail goes out by the real e-mail channel to the local SMTP server."""
    ctx = server.app[CTX]
    config = EmailConfig(smtp.url, CLINIC_FROM, "", "", 30)
    ctx.senders = {**ctx.senders, "email": EmailChannel(config)}


async def mails_to(server: TestServer, smtp: SmtpServer, address: str) -> list[str]:
    """The texts of every account mail sent to `address`, once what was on its way left."""
    await server.app[POSTBOX].drain()
    return [mail.get_content() for mail in smtp.sent_to(address)]


async def mailed_link(server: TestServer, smtp: SmtpServer, address: str) -> str:
    """The link in the latest mail to `address`."""
    found = _LINK.search((await mails_to(server, smtp, address))[-1])
    assert found, "the latest mail carries no link"
    return found.group(0)


def token_of(link: str) -> str:
    return link.split("#token=", 1)[1]


async def signed_up(
    server: TestServer, smtp: SmtpServer, form: Mapping[str, Any]
) -> aiohttp.ClientSession:
    """A patient who signed up, followed the link mailed to them and logged in."""
    http = aiohttp.ClientSession(
        base_url=str(server.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    async with http.post("/api/signup", json=form) as response:
        assert response.status == 202, await response.text()
    link = await mailed_link(server, smtp, form["email"].lower())
    async with http.post("/api/verify-email", json={"token": token_of(link)}) as response:
        assert response.status == 200, await response.text()
    async with http.post(
        "/api/login", json={"email": form["email"], "password": form["password"]}
    ) as response:
        assert response.status == 200, await response.text()
    return http
