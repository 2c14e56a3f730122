"""The web app on a real local HTTP server, with deliveries and Rasa calls recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp.test_utils import TestServer

from accounts.auth import hash_password
from core.settings import Settings
from models import User
from processes.web import create_app
from tests.factories import patient_message
from tests.fakes import RecordingBot, RecordingSender
from web.keys import CTX


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


async def logged_in(server: TestServer, email: str, password: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(
        base_url=str(server.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    async with http.post("/api/login", json={"email": email, "password": password}) as response:
        assert response.status == 200, await response.text()
    return http


async def patient_logged_in(server: TestServer, password: str) -> aiohttp.ClientSession:
    """A patient who wrote to the clinic and then signed up, logged in."""
    ctx = server.app[CTX]
    recorded = await patient_message(ctx.db)
    async with ctx.db.session() as session:
        patient = await session.get(User, recorded.message.patient_id)
        patient.email = "paciente@exemplo.com"
        patient.password_hash = hash_password(password)
    return await logged_in(server, "paciente@exemplo.com", password)
