"""The clinic's own site on another host of the portal's site (www.clinica.test beside
portal.clinica.test): a patient logged into the portal who opens the widget there chats as
themselves, with no identity step. In Chromium, both names resolving to this machine."""

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, async_playwright, expect
from sqlalchemy import select

from models import Message, User
from processes.web import create_app
from tests.clinic import free_port
from tests.e2e.conftest import CHROMIUM_ARGS
from tests.fakes import RecordingBot
from tests.portal.test_patient_accounts import MARIA
from tests.webapp import mail_through, signed_up
from web.keys import CTX

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

SITE_PORT = free_port()
PORTAL = f"http://portal.clinica.test:{free_port()}"
SITE = f"http://www.clinica.test:{SITE_PORT}"


def _clinic_site() -> web.Application:
    """The clinic's own site: one page that embeds the portal's widget script."""
    page = f"""<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">
<title>Clínica Vida Plena</title></head><body><h1>Clínica Vida Plena</h1>
<script src="{PORTAL}/webhooks/webchat/widget.js" data-title="Clínica Vida Plena" async></script>
</body></html>"""

    async def home(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", home)
    return app


@pytest.fixture
async def portal(settings, smtp_server) -> AsyncIterator[TestServer]:
    port = int(PORTAL.rsplit(":", 1)[1])
    app = create_app(
        replace(settings, web_url=PORTAL, public_base_url=PORTAL, widget_origins=(SITE,))
    )
    server = TestServer(app, port=port)
    await server.start_server()
    server.app[CTX].bot = RecordingBot()
    mail_through(server, smtp_server)
    yield server
    await server.close()


@pytest.fixture
async def clinic_site() -> AsyncIterator[TestServer]:
    server = TestServer(_clinic_site(), port=SITE_PORT)
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def same_site_browser(chromium) -> AsyncIterator[Browser]:
    """A browser in which both of the clinic's host names reach this machine."""
    rules = "--host-resolver-rules=MAP *.clinica.test 127.0.0.1"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=[*CHROMIUM_ARGS, rules]
        )
        yield browser
        await browser.close()


async def test_a_portal_patient_chats_as_themselves_in_the_widget_on_the_clinics_site(
    portal, clinic_site, same_site_browser, smtp_server
):
    await (await signed_up(portal, smtp_server, MARIA)).close()  # signed up and verified
    page = await (await same_site_browser.new_context()).new_page()
    await page.goto(f"{PORTAL}/login")
    await page.fill("#email", MARIA["email"])
    await page.fill("#password", MARIA["password"])
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{PORTAL}/portal")

    await page.goto(f"{SITE}/")
    await page.click(".ocw-launcher")
    await page.fill(".ocw-form input", "quero remarcar minha consulta")
    await page.keyboard.press("Enter")
    await expect(page.locator(".ocw-msg").first).to_contain_text("quero remarcar")

    async with portal.app[CTX].db.session() as session:
        maria = await session.scalar(select(User.id).where(User.email == MARIA["email"].lower()))
        written = await session.scalar(
            select(Message.patient_id).where(Message.text == "quero remarcar minha consulta")
        )
    assert written == maria  # her record: no anonymous visitor, no identity step
