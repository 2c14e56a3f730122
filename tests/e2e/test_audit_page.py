"""The admin's audit log section in real Chromium: the entries with who, what and from
where, a filter by action, and the chain's verification."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from models import Role
from tests.factories import second_factor_optional, staff
from tests.webapp import web_server
from web.keys import CTX

pytestmark = pytest.mark.e2e
PASSWORD = "senha-segura"


async def test_the_admin_reads_filters_and_verifies_the_audit_log(settings, browser):
    async with web_server(settings) as server:
        base = str(server.make_url("")).rstrip("/")
        admin = await staff(server.app[CTX].db, Role.ADMIN, password=PASSWORD)
        # The page's first rows are the login's (the second factor's own page and entries:
        # tests/e2e/test_security_page.py).
        await second_factor_optional(server.app[CTX].db)
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{base}/login")
        await page.fill("#email", admin.email)
        await page.fill("#password", "senha-errada-1")
        await page.click("button[type=submit]")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(f"{base}/staff")

        await page.goto(f"{base}/staff/admin")
        rows = page.locator("#audit-table tbody tr")
        await expect(rows.first).to_contain_text("Login")
        await expect(rows.first).to_contain_text(admin.name)
        await expect(rows.first).to_contain_text("127.0.0.1")
        await expect(page.locator("#audit-chain")).to_contain_text("Integridade verificada")

        await page.select_option("#audit-filters select[name=action]", "login_failed")
        await page.click("#audit-filters button[type=submit]")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("Login recusado")
        await expect(rows.first).to_contain_text("Ninguém logado")
        await expect(page.locator("#audit-page")).to_have_text("Página 1 de 1 · 1 registros")
