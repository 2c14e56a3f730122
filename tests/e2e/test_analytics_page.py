"""The manager's analytics console in real Chromium, on the hand-made week of
tests/handoff/analytics_fixture.py: the figures with their definitions, the charts against the
previous week, the WhatsApp filter, the SLA breaches drilled down to a transcript, and a CSV
export; the page keeps to the Content-Security-Policy."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from models import Role
from tests.e2e.test_csp import Violations
from tests.factories import second_factor_optional, staff
from tests.handoff.analytics_fixture import build
from web.keys import CTX

pytestmark = pytest.mark.e2e
PASSWORD = "senha-segura"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_manager_reads_the_week_filters_drills_down_and_exports(browser: Browser, server):
    base = str(server.make_url("")).rstrip("/")
    ctx = server.app[CTX]
    await second_factor_optional(ctx.db)
    week = await build(ctx.db)
    manager = await staff(ctx.db, Role.MANAGER)
    context = await browser.new_context(accept_downloads=True)
    try:
        page = await context.new_page()
        violations = Violations(page)
        await page.goto(base + "/login")
        await page.fill("#email", manager.email)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(base + "/staff")
        await page.goto(base + "/staff/metrics")
        await expect(page.locator("#charts canvas").first).to_be_visible()  # this week, loaded

        await page.fill("#from", "2026-11-02")
        await page.fill("#to", "2026-11-08")
        await page.click("#filters button[type=submit]")
        handoffs = page.locator('[data-card="handoffs"]')
        await expect(handoffs.locator(".value")).to_have_text("4")
        assert "fila da equipe" in (await handoffs.get_attribute("title") or "")
        await expect(page.locator('[data-card="first_response"] .value')).to_have_text("9 min")
        await expect(page.locator('[data-card="sla_breaches"] .value')).to_have_text("2")
        await expect(page.locator("#charts canvas")).to_have_count(14)
        await page.locator("#help summary").click()
        await expect(page.locator("#definitions")).to_contain_text("72 horas")
        assert "docs/" not in await page.content()

        await page.select_option("#channel", "whatsapp")
        await expect(handoffs.locator(".value")).to_have_text("2")
        await expect(page.locator('[data-card="sla_breaches"] .value')).to_have_text("1")

        await page.locator('[data-card="sla_breaches"]').click()
        drill = page.locator("#drill-table tbody tr")
        await expect(drill).to_have_count(1)
        await expect(drill).to_contain_text("Bruno")
        async with context.expect_page() as opened:
            await drill.get_by_role("link", name="Abrir conversa").click()
        transcript = await opened.value
        await expect(transcript).to_have_url(f"{base}/staff#conversa={week.conversations['B']}")
        await expect(transcript.locator("#patient-name")).to_have_text("Paciente 2")

        async with page.expect_download() as download:
            await page.locator('[data-csv="canais"]').click()
        saved = Path(await (await download.value).path())
        text = await asyncio.to_thread(saved.read_text, encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][:3] == ["canal", "conversas", "encaminhadas"]
        assert [row[:3] for row in rows[1:]] == [["whatsapp", "3", "2"]]
        assert violations.seen == []
    finally:
        await context.close()
