"""Labels and canned responses in real Chromium: a manager creates a label and a canned
response on their page, an attendant puts the label on a conversation from the workspace and
filters the list by it (the manager's workspace shows the label live), then types the canned
response's shortcut in the reply box, which expands and is sent; the attendant has no way
into the manager's page."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from handoff.transitions import queueing
from models import AuthorKind, Message, Role
from tests.e2e.accessibility import checked_context, serious_violations
from tests.e2e.test_csp import Violations
from tests.factories import patient_message, second_factor_optional, staff
from web.keys import CTX

pytestmark = pytest.mark.e2e
PASSWORD = "senha-segura"


async def _log_in(browser: Browser, base: str, email: str, *, axe: bool = False) -> Page:
    """Logged in to the workspace; with `axe`, in a context axe-core can be injected into."""
    context = await (checked_context(browser) if axe else browser.new_context())
    page = await context.new_page()
    await page.goto(base + "/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(base + "/staff")
    return page


async def _handed_off(ctx, name: str, text: str) -> int:
    recorded = await patient_message(ctx.db, text, display_name=name)
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    return recorded.conversation.id


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_labels_and_canned_responses_from_the_managers_page_to_the_reply_box(
    browser: Browser, server
):
    base = str(server.make_url("")).rstrip("/")
    ctx = server.app[CTX]
    await second_factor_optional(ctx.db)
    manager = await staff(ctx.db, Role.MANAGER)
    ana = await staff(ctx.db, capacity=3)
    exams = await _handed_off(ctx, "Maria Souza", "quero saber do meu exame")
    other = await _handed_off(ctx, "João Lima", "preciso remarcar")

    # The manager creates a label and a canned response on their page.
    marta = await _log_in(browser, base, manager.email)
    violations = Violations(marta)
    await marta.click("#labels-link")
    await expect(marta).to_have_url(base + "/staff/etiquetas")
    await marta.fill("#label-name", "Exames")
    await marta.fill("#label-colour", "#1a7f37")
    await marta.click("#label-new button[type=submit]")
    await expect(marta.locator("#label-list li[data-label-id] input").first).to_have_value("Exames")
    await marta.fill("#canned-shortcut", "preparo")
    await marta.fill("#canned-text", "Olá, {paciente}! Para o exame, jejum de 8 horas.")
    await marta.click("#canned-new button[type=submit]")
    await expect(marta.locator("#canned-list li[data-canned-id] input")).to_have_value("preparo")
    await expect(marta.locator("#labels-status")).to_have_text("Salvo.")

    await marta.goto(base + "/staff")
    await expect(marta.locator(f'#others [data-conversation-id="{exams}"]')).to_be_visible()

    # The attendant puts it on one of their conversations; the list shows it and filters by it.
    page = await _log_in(browser, base, ana.email, axe=True)
    await expect(page.locator("#labels-link")).to_have_count(0)
    mine = page.locator("#mine")
    await expect(mine.locator("[data-conversation-id]")).to_have_count(2)
    await mine.locator(f'[data-conversation-id="{exams}"]').click()
    await expect(page.locator("#timeline")).to_contain_text("quero saber do meu exame")
    await page.select_option("#conversation-labels .label-add", label="Exames")
    await expect(mine.locator(f'[data-conversation-id="{exams}"] .label-chip')).to_have_text(
        "Exames"
    )
    # The manager's workspace, open meanwhile, shows it live.
    await expect(
        marta.locator(f'#others [data-conversation-id="{exams}"] .label-chip')
    ).to_have_text("Exames")
    await page.select_option("#label-filter", label="Exames")
    await expect(mine.locator("[data-conversation-id]")).to_have_count(1)
    await expect(mine.locator(f'[data-conversation-id="{other}"]')).to_have_count(0)
    await page.select_option("#label-filter", "")
    await expect(mine.locator("[data-conversation-id]")).to_have_count(2)
    assert await serious_violations(page) == []  # the chips' colours read, the controls named

    # The shortcut expands in the reply box and goes out.
    await page.click("#reply-text")
    await page.keyboard.type("/prep")
    await expect(page.locator('#canned-suggestions [data-shortcut="preparo"]')).to_be_visible()
    await page.keyboard.type("aro")
    await page.keyboard.press("Tab")
    expanded = "Olá, Maria! Para o exame, jejum de 8 horas."
    await expect(page.locator("#reply-text")).to_have_value(expanded)
    await page.keyboard.press("Enter")
    await expect(page.locator("#timeline .entry.author-attendant")).to_contain_text(expanded)
    async with ctx.db.session() as session:
        sent = await session.execute(
            select(Message.text).where(
                Message.conversation_id == exams, Message.author_kind == AuthorKind.ATTENDANT
            )
        )
        assert list(sent.scalars()) == [expanded]

    # The manager's page is not the attendant's.
    await page.goto(base + "/staff/etiquetas")
    await expect(page).to_have_url(base + "/staff")
    assert violations.seen == []
