"""The staff member's "Segurança da conta" page in Chromium: a manager who must have a second
factor lands there after the password, enrols by the QR code's key and a first code, sees
the recovery codes once, and from then on the login asks for a code."""

import time

import pyotp
import pytest
from playwright.async_api import Browser, Page, expect

from models import Role
from tests.e2e.test_csp import Violations
from tests.factories import staff
from web.keys import CTX

pytestmark = pytest.mark.e2e
PASSWORD = "senha-segura"


async def _password_step(page: Page, base: str, email: str) -> None:
    await page.goto(base + "/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("#login-form button[type=submit]")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_manager_enrols_in_the_browser_then_logs_in_with_a_code(browser: Browser, server):
    base = str(server.make_url("")).rstrip("/")
    manager = await staff(server.app[CTX].db, Role.MANAGER, password=PASSWORD)

    first = await browser.new_context()
    try:
        page = await first.new_page()
        violations = Violations(page)
        await _password_step(page, base, manager.email)
        await expect(page).to_have_url(base + "/staff/seguranca")
        await expect(page.locator("#security-policy")).to_contain_text("exige")
        await expect(page.locator("#security-continue")).to_be_hidden()
        await page.click("#enrol-start")
        await expect(page.locator("#enrol-qr svg")).to_be_visible()
        secret = (await page.locator("#enrol-secret").text_content()).strip()
        await page.fill("#enrol-code", "000000")
        await page.click("#enrol-form button[type=submit]")
        await expect(page.locator("#security-error")).to_contain_text("Código incorreto")
        await page.fill("#enrol-code", pyotp.TOTP(secret).now())
        await page.click("#enrol-form button[type=submit]")
        await expect(page.locator("#recovery-codes li")).to_have_count(10)
        await expect(page.locator("#security-state")).to_contain_text("Ativa")
        await page.click("#security-continue")
        await expect(page).to_have_url(base + "/staff")
        assert violations.seen == []
    finally:
        await first.close()

    later = await browser.new_context()
    try:
        page = await later.new_page()
        await _password_step(page, base, manager.email)
        await expect(page.locator("#code-form")).to_be_visible()
        await expect(page.locator("#login-form")).to_be_hidden()
        await page.fill("#code", "111111")
        await page.click("#code-form button[type=submit]")
        await expect(page.locator("#code-error")).to_contain_text("Código incorreto")
        # The enrolment spent this step's code: the app's next one (within the drift).
        await page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
        await page.click("#code-form button[type=submit]")
        await expect(page).to_have_url(base + "/staff")
        await expect(page.locator("#connection")).to_have_text("Conectado")
    finally:
        await later.close()
