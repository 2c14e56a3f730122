"""The staff search in real Chromium: an attendant types a word of a conversation they
served, without its accent, and reads that conversation's transcript; the past
conversations open from the bar, filtered by channel; a patient found by name opens their
conversation in progress in the workspace; the panel passes axe-core."""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from sqlalchemy import update

from handoff.transitions import moves, queueing, resolution
from models import Presence, User
from tests.e2e.accessibility import checked_context, serious_violations
from tests.factories import patient_message, staff
from web.keys import CTX

pytestmark = pytest.mark.e2e
PASSWORD = "senha-segura"


async def _logged_in_page(browser, base: str, email: str):
    page = await (await checked_context(browser)).new_page()
    await page.goto(f"{base}/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/staff")
    return page


async def _search(page, query: str) -> None:
    """Type in the bar's search box and press Enter, as soon as the page is there."""
    await page.fill("#search-q", query)
    await page.press("#search-q", "Enter")


async def test_an_attendant_finds_a_past_conversation_by_a_word_and_reads_it(server, browser):
    ctx = server.app[CTX]
    base = str(server.make_url("")).rstrip("/")
    ana = await staff(ctx.db, presence=Presence.PAUSED, password=PASSWORD)
    recorded = await patient_message(ctx.db, "Preciso remarcar a cirúrgia do joelho")
    conversation_id = recorded.conversation.id
    await queueing.request_handoff(ctx, conversation_id, reason="pedido_do_paciente")
    await moves.take(ctx, conversation_id, ana)
    await resolution.resolve(ctx, conversation_id, ana)
    await patient_message(ctx.db, "outra cirurgia, de outra pessoa")  # never Ana's

    page = await _logged_in_page(browser, base, ana.email)
    await _search(page, "CIRURGIA")
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
    await expect(page.locator("#connection")).to_have_text("Conectado")
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


async def test_a_patient_found_by_name_opens_their_conversation_in_progress(server, browser):
    ctx = server.app[CTX]
    base = str(server.make_url("")).rstrip("/")
    ana = await staff(ctx.db, presence=Presence.PAUSED, password=PASSWORD)
    recorded = await patient_message(ctx.db, "Meu exame de sangue já saiu?")
    async with ctx.db.session() as session:
        await session.execute(
            update(User).where(User.id == recorded.message.patient_id).values(name="Rosa Amaral")
        )
    conversation_id = recorded.conversation.id
    await queueing.request_handoff(ctx, conversation_id, reason="pedido_do_paciente")
    await moves.take(ctx, conversation_id, ana)  # with Ana now, never closed

    page = await _logged_in_page(browser, base, ana.email)
    await _search(page, "rosa amaral")
    patient = page.locator("#search-patients button")
    await expect(patient).to_have_count(1)
    await patient.click()
    await expect(page.locator("#search-title")).to_have_text("Conversas de Rosa Amaral")
    in_progress = page.locator("#open-list button")
    await expect(in_progress).to_have_count(1)
    await expect(in_progress).to_contain_text("Conversa em andamento")
    await expect(in_progress).to_contain_text(f"com {ana.name}")
    await expect(page.locator("#past-list")).to_contain_text("Nenhuma conversa encerrada")
    assert await serious_violations(page) == []

    await in_progress.click()
    await expect(page.locator("#conversation")).to_be_visible()
    await expect(page.locator("#search-panel")).to_be_hidden()
    await expect(page.locator("#patient-name")).to_have_text("Rosa Amaral")
    await expect(page.locator("#timeline")).to_contain_text("Meu exame de sangue já saiu?")
    await expect(page.locator(f'#mine [data-conversation-id="{conversation_id}"]')).to_be_visible()
