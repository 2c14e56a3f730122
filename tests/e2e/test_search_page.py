"""The staff search in real Chromium: an attendant types a word of a conversation they
served, without its accent, and reads that conversation's transcript; the past
conversations open from the bar, filtered by channel; the panel passes axe-core."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from handoff.transitions import moves, queueing, resolution
from models import Presence
from tests.e2e.accessibility import checked_context, serious_violations
from tests.factories import patient_message, staff
from tests.webapp import web_server
from web.keys import CTX

pytestmark = pytest.mark.e2e
PASSWORD = "senha-segura"


async def test_an_attendant_finds_a_past_conversation_by_a_word_and_reads_it(settings, browser):
    async with web_server(settings) as server:
        ctx = server.app[CTX]
        base = str(server.make_url("")).rstrip("/")
        ana = await staff(ctx.db, presence=Presence.PAUSED, password=PASSWORD)
        recorded = await patient_message(ctx.db, "Preciso remarcar a cirúrgia do joelho")
        conversation_id = recorded.conversation.id
        await queueing.request_handoff(ctx, conversation_id, reason="pedido_do_paciente")
        await moves.take(ctx, conversation_id, ana)
        await resolution.resolve(ctx, conversation_id, ana)
        await patient_message(ctx.db, "outra cirurgia, de outra pessoa")  # never Ana's

        page = await (await checked_context(browser)).new_page()
        await page.goto(f"{base}/login")
        await page.fill("#email", ana.email)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(f"{base}/staff")

        await page.fill("#search-q", "CIRURGIA")
        await page.press("#search-q", "Enter")
        found = page.locator("#search-messages button")
        await expect(found).to_have_count(1)
        await expect(found).to_contain_text("Preciso remarcar a cirúrgia do joelho")
        await found.click()
        await expect(page.locator("#transcript-head")).to_have_text(
            "Conversa encerrada — somente leitura"
        )
        transcript = page.locator("#transcript-timeline")
        await expect(transcript).to_contain_text("Preciso remarcar a cirúrgia do joelho")
        await expect(transcript).to_contain_text(f"Atendimento encerrado por {ana.name}")
        await expect(page.locator("#conversation")).to_be_hidden()
        assert await serious_violations(page) == []

        await page.click("#past-open")
        past = page.locator("#past-list button")
        await expect(past).to_have_count(1)
        await expect(past).to_contain_text(f"por {ana.name}")
        await page.select_option("#past-filters select[name=channel]", "telegram")
        await page.click("#past-filters button[type=submit]")
        await expect(page.locator("#past-list")).to_contain_text(
            "Nenhuma conversa encerrada com esses filtros."
        )
        assert await serious_violations(page) == []
