import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from tests.clients import StaffClient
from tests.clinic import STAFF_PASSWORD
from tests.databases import IN_CI

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


async def open_workspace(browser: Browser, clinic, email_prefix: str) -> Page:
    """A staff member's own browser window, logged in to the workspace."""
    login = clinic.login_for(email_prefix)
    page = await (await browser.new_context()).new_page()
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
