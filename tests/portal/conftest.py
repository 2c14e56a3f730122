"""The web app with the demo clinic's agenda, and Maria signed up, verified and logged in."""

from collections.abc import AsyncIterator

import aiohttp
import pytest

from models import utcnow
from scripts.demo_clinic import add_agenda
from tests.portal.test_patient_accounts import MARIA
from tests.webapp import mail_through, signed_up, web_server
from web.keys import CTX


@pytest.fixture
async def server(settings, smtp_server) -> AsyncIterator:
    async with web_server(settings) as server:
        mail_through(server, smtp_server)
        async with server.app[CTX].db.session() as session:
            add_agenda(session, [utcnow().year, utcnow().year + 1])
        yield server


@pytest.fixture
async def maria(server, smtp_server) -> AsyncIterator[aiohttp.ClientSession]:
    http = await signed_up(server, smtp_server, MARIA)
    yield http
    await http.close()
