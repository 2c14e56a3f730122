"""The 24-hour window in the browser: an admin registers an approved WhatsApp template on
the admin page; on Monday the attendant opens a Friday-night WhatsApp conversation, sees the
reply box closed with the clinic's templates instead of free text, fills the variables,
sends one (the fake Graph API gets the template), and the patient's answer opens the box
again."""

from datetime import timedelta

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from models import ChannelIdentity, utcnow
from tests.channels.webhooks import deliver, text_message
from tests.clinic import STAFF_PASSWORD
from tests.e2e.conftest import open_workspace, reset_reception

pytestmark = pytest.mark.e2e

PERSON = "5511987652301"


async def _patient_writes(clinic, text: str) -> None:
    status, _ = await deliver(
        clinic.settings.web_url,
        "whatsapp",
        text_message("whatsapp", PERSON, text),
        public_base_url=clinic.settings.public_base_url,
    )
    assert status == 200


async def test_a_closed_window_offers_the_approved_templates_and_sends_one(
    clinic, browser, provider, live_db
):
    await reset_reception(clinic)
    base = clinic.settings.web_url
    admin = await (await browser.new_context()).new_page()
    ana = await open_workspace(browser, clinic, "ana@")
    try:
        # The admin registers the clinic's approved template.
        await admin.goto(f"{base}/login")
        await admin.fill("#email", clinic.login_for("admin@").email)
        await admin.fill("#password", STAFF_PASSWORD)
        await admin.click("button[type=submit]")
        await expect(admin).to_have_url(f"{base}/staff")
        await admin.goto(f"{base}/staff/admin")
        form = admin.locator("#template-form")
        await form.locator("select[name=kind]").select_option("whatsapp")
        await form.locator("input[name=name]").fill("retomar_conversa")
        await form.locator("select[name=purpose]").select_option("reply")
        await form.locator("textarea[name=body]").fill(
            "Olá, {{1}}! Vimos sua mensagem e podemos continuar agora. Tudo bem?"
        )
        await form.locator("textarea[name=variables]").fill("Nome do paciente")
        await form.locator("button[type=submit]").click()
        await expect(admin.locator("#template-status")).to_have_text("Modelo salvo.")
        await expect(admin.locator("#templates-table tbody")).to_contain_text("retomar_conversa")
        await expect(admin.locator("#templates-table tbody")).to_contain_text("Retomar a conversa")

        # Friday night the patient asks for a person; Ana has the conversation.
        await ana.select_option("#presence", "online")
        await _patient_writes(clinic, "quero falar com um atendente")
        item = ana.locator("#mine li").filter(has_text="WhatsApp")
        await expect(item).to_have_count(1)
        async with live_db.session() as session:
            identity = (
                await session.execute(
                    select(ChannelIdentity).where(ChannelIdentity.external_id == PERSON)
                )
            ).scalar_one()
            identity.last_inbound_at = utcnow() - timedelta(hours=58)

        # Monday: the box says the window is closed and offers the templates.
        await item.click()
        await expect(ana.locator("#window-notice")).to_contain_text("Janela de 24 horas encerrada")
        await expect(ana.locator("#reply-text")).to_be_hidden()
        await ana.select_option("#template-choice", label="retomar_conversa · Retomar a conversa")
        await ana.locator("#template-values input").fill("Maria")
        await expect(ana.locator("#template-preview")).to_contain_text(
            "Olá, Maria! Vimos sua mensagem e podemos continuar agora."
        )
        await ana.click("#template-send")
        await expect(ana.locator("#timeline .entry.outbound").last).to_contain_text(
            "Olá, Maria! Vimos sua mensagem"
        )
        [sent] = await provider.wait_for(
            lambda r: r.recipient == PERSON and r.json.get("type") == "template"
        )
        assert sent.json["template"]["name"] == "retomar_conversa"
        assert sent.json["template"]["components"][0]["parameters"] == [
            {"type": "text", "text": "Maria"}
        ]

        # The patient answers: the box is free text again.
        await _patient_writes(clinic, "tudo bem, pode falar")
        await expect(ana.locator("#reply-text")).to_be_visible()
        await expect(ana.locator("#window-notice")).to_contain_text("Resposta livre até")
        await ana.fill("#reply-text", "Ótimo, Maria!")
        await ana.press("#reply-text", "Enter")
        await provider.wait_for(lambda r: r.recipient == PERSON and r.text == "Ótimo, Maria!")
    finally:
        await admin.context.close()
        await ana.context.close()
        await reset_reception(clinic)
