"""A patient in the site widget and an attendant in the staff workspace, in real Chromium."""

import pytest
from playwright.async_api import expect

from models import Conversation
from models.db import Database
from tests.clients import StaffClient
from tests.clinic import STAFF_PASSWORD
from tests.e2e.conftest import bot_said, open_widget, say, tap

pytestmark = pytest.mark.e2e


async def _csat(clinic, conversation_id: int) -> int | None:
    db = Database(clinic.settings.database_url)
    try:
        async with db.session() as session:
            return (await session.get(Conversation, conversation_id)).csat_score
    finally:
        await db.dispose()


async def _only_this_attendant_online(clinic, email_prefix: str) -> None:
    for login in clinic.logins:
        if login.role == "attendant" and not login.email.startswith(email_prefix):
            client = StaffClient(clinic.settings.web_url)
            await client.login(login.email, STAFF_PASSWORD)
            status, _ = await client.request("POST", "/api/presence", {"presence": "offline"})
            assert status == 200
            await client.close()


async def test_patient_to_attendant_and_back_to_the_bot(clinic, browser):
    await _only_this_attendant_online(clinic, "bruno@")
    bruno = clinic.login_for("bruno@")
    staff = await (await browser.new_context()).new_page()

    # The attendant logs in and goes online.
    await staff.goto(f"{clinic.settings.web_url}/staff")
    await expect(staff).to_have_url(f"{clinic.settings.web_url}/login")
    await staff.fill("#email", bruno.email)
    await staff.fill("#password", STAFF_PASSWORD)
    await staff.click("button[type=submit]")
    await expect(staff.locator("#me")).to_contain_text(bruno.name)
    await expect(staff.locator("#connection")).to_have_text("Conectado")
    await staff.select_option("#presence", "online")

    # The patient talks to the bot in the widget on the clinic's page.
    patient = await open_widget(browser, clinic)
    await say(patient, "oi")
    await expect(bot_said(patient)).to_contain_text("assistente virtual")

    await say(patient, "quero falar com um atendente")
    await expect(patient.locator('.ocw-msg[data-author="system"]').last).to_contain_text(
        f"{bruno.name} entrou na conversa"
    )

    # The conversation appears live in the attendant's list, with the whole history.
    item = staff.locator("#mine .conversation-item").first
    await expect(item).to_be_visible()
    await item.click()
    await expect(staff.locator("#timeline")).to_contain_text("quero falar com um atendente")
    await expect(staff.locator("#timeline")).to_contain_text("assistente virtual")

    await say(patient, "minha consulta é amanhã?")
    await expect(staff.locator("#timeline")).to_contain_text("minha consulta é amanhã?")

    await staff.fill("#reply-text", "Olá! Aqui é o Bruno, vou verificar para você.")
    await staff.press("#reply-text", "Enter")
    await expect(patient.locator('.ocw-msg[data-author="attendant"]').last).to_contain_text(
        "vou verificar para você"
    )

    # "Encerrar atendimento" hands the patient back to the bot, which asks for a 1-5 score.
    conversation_id = int(await item.get_attribute("data-conversation-id"))
    await staff.click("#resolve")
    await expect(bot_said(patient)).to_contain_text("de 1 a 5")
    await expect(staff.locator("#mine .conversation-item")).to_have_count(0)
    await tap(patient, "5")
    await expect(bot_said(patient)).to_contain_text("Obrigada pela sua nota (5)")
    assert await _csat(clinic, conversation_id) == 5

    await say(patient, "bom dia")
    await expect(bot_said(patient)).to_contain_text("assistente virtual")
