"""The web app on a real local HTTP server, with deliveries and Rasa calls recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp.test_utils import TestServer

from handoff.web.app import create_app
from handoff.web.keys import CTX
from settings import Settings
from tests.fakes import RecordingBotApi, RecordingSender


@asynccontextmanager
async def web_server(settings: Settings) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(settings))
    await server.start_server()
    ctx = server.app[CTX]
    ctx.senders = {"webchat": RecordingSender()}
    ctx.bot = RecordingBotApi()
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
