import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from core.settings import Settings
from models import Message
from models.db import Database
from processes.web import create_app
from tests.clients import StaffClient, WidgetClient
from tests.clinic import STAFF_PASSWORD, free_port
from tests.databases import IN_CI
from tests.e2e.accessibility import checked_context
from tests.factories import fresh_cpf
from tests.fakes import RecordingBot
from web.keys import CTX

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium keeps trying to reach Google's services through a closed network.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.e2e
# The clinic's processes share two cores with the browser: give live updates some slack.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (make test installs Debian's chromium when it can)"
        if IN_CI:
            pytest.fail(f"CI=true requires the browser: {message}")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[TestServer]:
    """The web app alone at the address its settings name: the sockets check the page's
    origin."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = TestServer(create_app(replace(settings, web_url=url, public_base_url=url)), port=port)
    await server.start_server()
    server.app[CTX].bot = RecordingBot()
    yield server
    await server.close()


async def reset_reception(clinic) -> None:
    """Leave the shared clinic as a fresh morning: nobody online, nothing with a person."""
    manager = StaffClient(clinic.settings.web_url)
    try:
        await manager.login(clinic.login_for("marta@").email, STAFF_PASSWORD)
        _, conversations = await manager.request("GET", "/api/conversations")
        for conversation in conversations:
            if conversation["owner"] != "bot":
                path = f"/api/conversations/{conversation['id']}/resolve"
                status, body = await manager.request("POST", path)
                assert status == 200, body
    finally:
        await manager.close()
    for login in clinic.logins:
        if login.role in ("attendant", "manager"):
            client = StaffClient(clinic.settings.web_url)
            try:
                await client.login(login.email, STAFF_PASSWORD)
                status, _ = await client.request("POST", "/api/presence", {"presence": "offline"})
                assert status == 200
            finally:
                await client.close()


async def conversation_of(clinic, message_id: int) -> int:
    db = Database(clinic.settings.database_url)
    try:
        async with db.session() as session:
            return (await session.get(Message, message_id)).conversation_id
    finally:
        await db.dispose()


async def hand_off(clinic, text: str) -> tuple[WidgetClient, int, str]:
    """A widget patient asks for a person, then writes `text`; returns them, their
    conversation and the name of the staff member who got it."""
    patient = WidgetClient(clinic.widget_socket_url)
    await patient.connect()
    await patient.say("quero falar com um atendente")
    assert "equipe" in (await patient.next_reply("bot"))["text"]
    joined = (await patient.next_reply("system"))["text"]
    holder = re.match(r"(.+) entrou na conversa", joined).group(1)
    ack = await patient.say(text)
    return patient, await conversation_of(clinic, ack["message_id"]), holder


async def open_workspace(
    browser: Browser, clinic, email_prefix: str, *, checked: bool = False
) -> Page:
    """A staff member's own browser window, logged in to the workspace (`checked`: one
    axe-core can be injected into, see tests/e2e/accessibility.py)."""
    login = clinic.login_for(email_prefix)
    context = await (checked_context(browser) if checked else browser.new_context())
    page = await context.new_page()
    await page.goto(f"{clinic.settings.web_url}/login")
    await page.fill("#email", login.email)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("#connection")).to_have_text("Conectado")
    return page


async def open_widget(browser: Browser, clinic) -> Page:
    """A patient's own browser on the clinic's site, with the chat widget open."""
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{clinic.settings.web_url}/")
    await page.click(".ocw-launcher")
    return page


async def say(page: Page, text: str) -> None:
    """The patient types in the widget and presses Enter."""
    await page.fill(".ocw-form input", text)
    await page.press(".ocw-form input", "Enter")


async def tap(page: Page, title: str | re.Pattern[str]) -> None:
    """The patient taps one of the buttons under the clinic's latest message (the widget
    removes older ones as soon as anything new is shown)."""
    await page.locator(".ocw-buttons").get_by_role("button", name=title, exact=True).click()


def bot_said(page: Page) -> Locator:
    """The bot's latest message in the widget."""
    return page.locator('.ocw-msg[data-author="bot"]').last


async def widget_token(page: Page) -> str:
    """The visitor token the widget keeps for this browser."""
    return await page.evaluate("localStorage.getItem('omniclinica.webchat.token')")


async def show_agenda_day(page: Page, clinic, day: date) -> None:
    """A logged-in staff member's agenda page, on `day`."""
    await page.goto(f"{clinic.settings.web_url}/staff/agenda")
    await page.fill("#day", day.isoformat())
    await page.dispatch_event("#day", "change")


async def tab_to(page: Page, selector: str, *, limit: int = 60) -> None:
    """Press Tab (only) until the element matching `selector` has the focus."""
    for _ in range(limit):
        if await page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus from the keyboard")


async def portal_patient(page: Page, clinic, smtp_server, name: str, email: str) -> None:
    """Sign up, follow the mailed link and log in to the portal, in this page."""
    base = clinic.settings.web_url
    await page.goto(f"{base}/cadastro")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=email]", email)
    await page.fill("input[name=phone]", "(21) 99876-1111")
    await page.fill("input[name=cpf]", fresh_cpf())
    await page.fill("input[name=password]", "senha-secreta-1")
    await page.check("input[name=consent]")
    await page.click("button[type=submit]")
    mail = (await smtp_server.wait_for(email))[-1]
    token = re.search(r"#token=[\w-]+", mail.get_content()).group(0)
    await page.goto(f"{base}/verificar-email{token}")
    await expect(page.locator("#verify-status")).to_contain_text("E-mail confirmado")
    await page.goto(f"{base}/login")
    await page.fill("#email", email)
    await page.fill("#password", "senha-secreta-1")
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/portal")
