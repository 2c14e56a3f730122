"""Every page works under the platform's strict Content-Security-Policy: Chromium reports
no violation on the clinic page with its widget, login, sign-up, the staff workspace,
agenda, admin, indicators and the patient portal (and it does report one when a page breaks
the policy, so the silence means something)."""

from __future__ import annotations

import pyotp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from accounts.auth import hash_password
from models import Role, User, utcnow
from tests.factories import patient_message, staff
from web.keys import CTX

pytestmark = pytest.mark.e2e
PASSWORD = "senha-segura"
STAFF_PAGES = [
    "/staff",
    "/staff/agenda",
    "/staff/admin",
    "/staff/metrics",
    "/staff/seguranca",
    "/staff/etiquetas",
]


class Violations:
    """What the browser's console says about the Content-Security-Policy."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.seen.append(message.text)


async def _visit(context: BrowserContext, base: str, path: str) -> list[str]:
    page = await context.new_page()
    violations = Violations(page)
    await page.goto(base + path)
    await page.wait_for_load_state("load")
    await page.wait_for_timeout(800)  # the page's scripts fetch and render
    await page.close()
    return violations.seen


async def _log_in(context: BrowserContext, base: str, email: str) -> None:
    response = await context.request.post(
        base + "/api/login", data={"email": email, "password": PASSWORD}
    )
    assert response.ok, await response.text()


async def _enrol(context: BrowserContext, base: str) -> None:
    """Managers and admins must have a second factor before any other page opens."""
    response = await context.request.post(base + "/api/account/second-factor/enrolment")
    code = pyotp.TOTP((await response.json())["secret"]).now()
    response = await context.request.post(
        base + "/api/account/second-factor/confirm", data={"code": code}
    )
    assert response.ok, await response.text()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_no_page_breaks_the_content_security_policy(browser: Browser, server):
    base = str(server.make_url("")).rstrip("/")
    ctx = server.app[CTX]
    anonymous = await browser.new_context()
    try:
        clinic = await anonymous.new_page()
        violations = Violations(clinic)
        await clinic.goto(base + "/")
        await clinic.locator(".ocw-launcher").click()  # styled from its file, and working
        await expect(clinic.locator(".ocw-panel")).to_be_visible()
        await expect(clinic.locator(".ocw-status")).to_have_text("Respondemos em instantes")
        assert violations.seen == []
        for path in ("/login", "/cadastro"):
            assert await _visit(anonymous, base, path) == [], path
    finally:
        await anonymous.close()

    admin = await staff(ctx.db, Role.ADMIN)
    manager = await staff(ctx.db, Role.MANAGER)
    for user, pages in ((manager, ["/staff"]), (admin, STAFF_PAGES)):
        context = await browser.new_context()
        try:
            await _log_in(context, base, user.email)
            await _enrol(context, base)
            for path in pages:
                assert await _visit(context, base, path) == [], path
        finally:
            await context.close()

    recorded = await patient_message(ctx.db)
    async with ctx.db.session() as session:
        patient = await session.get_one(User, recorded.message.patient_id)
        patient.email = "paciente@exemplo.com"
        patient.password_hash = hash_password(PASSWORD)
        patient.email_verified_at = utcnow()
    context = await browser.new_context()
    try:
        await _log_in(context, base, "paciente@exemplo.com")
        assert await _visit(context, base, "/portal") == []
    finally:
        await context.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_browser_reports_what_breaks_the_policy(browser: Browser, server):
    context = await browser.new_context()
    try:
        page = await context.new_page()
        violations = Violations(page)
        await page.goto(str(server.make_url("/login")))
        await page.evaluate(
            """() => {
                const inline = document.createElement("script");
                inline.textContent = "document.title = 'injected'";
                document.body.appendChild(inline);
                document.body.setAttribute("style", "background: red");
            }"""
        )
        await page.wait_for_timeout(300)
        assert await page.title() != "injected"
        assert len(violations.seen) == 2
    finally:
        await context.close()
