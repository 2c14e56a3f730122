"""Files both ways through the running clinic, in Chromium: a patient's photo arrives on
WhatsApp (fetched from the fake Graph media server) and is shown in the workspace; the
attendant answers with a PDF, which WhatsApp (the fake) is told to fetch from a signed link;
the patient's "Histórico de mensagens" links both files, which open for them and for no
other patient."""

import copy

import aiohttp
import pytest
from playwright.async_api import expect
from sqlalchemy import select

from channels.base import HANDOFF_PAYLOAD
from core.catalog import t
from models import ChannelIdentity, Conversation, User
from tests.channels.test_files_in import PNG, whatsapp_image
from tests.channels.webhooks import deliver, load_json
from tests.e2e.conftest import open_workspace, portal_patient, reset_reception

pytestmark = pytest.mark.e2e

WA_ID = "5521999001122"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def tap_talk_to_person(sender: str) -> dict:
    payload = copy.deepcopy(load_json("whatsapp", "interactive_button_reply"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = sender
    message = value["messages"][0]
    message.update({"from": sender, "id": "wamid.files-e2e-tap"})
    message["interactive"]["button_reply"] = {
        "id": HANDOFF_PAYLOAD,
        "title": t("channel.talk_to_person"),
    }
    return payload


async def test_a_whatsapp_photo_is_shown_and_answered_with_a_pdf_only_its_patient_opens(
    clinic, browser, provider, smtp_server, live_db
):
    await reset_reception(clinic)
    base = clinic.settings.web_url
    # Rita has a portal account and writes from WhatsApp: her number is one of her channels.
    portal = await (await browser.new_context()).new_page()
    await portal_patient(portal, clinic, smtp_server, "Rita Souza", "rita.arquivos@exemplo.com")
    async with live_db.session() as session:
        rita = await session.scalar(select(User).where(User.email == "rita.arquivos@exemplo.com"))
        session.add(
            ChannelIdentity(
                channel="whatsapp", external_id=WA_ID, patient_id=rita.id, details={"wa_id": WA_ID}
            )
        )
    ana = await open_workspace(browser, clinic, "ana@")
    await ana.select_option("#presence", "online")

    # The photo of the exam request arrives; she asks for a person when offered one.
    status, _ = await deliver(base, "whatsapp", whatsapp_image(provider, PNG, sender=WA_ID))
    assert status == 200
    await provider.wait_for(lambda r: r.recipient == WA_ID)
    assert (await deliver(base, "whatsapp", tap_talk_to_person(WA_ID)))[0] == 200

    async with live_db.session() as session:
        conversation_id = await session.scalar(
            select(Conversation.id).where(Conversation.patient_id == rita.id)
        )
    item = ana.locator(f'#mine [data-conversation-id="{conversation_id}"]')
    await item.click()
    thumbnail = ana.locator("#timeline .file-thumb img")
    await expect(thumbnail).to_be_visible()
    assert await thumbnail.evaluate("img => img.complete && img.naturalWidth") == 1
    await ana.click("#timeline .file-thumb")
    await expect(ana.locator(".file-viewer img")).to_be_visible()
    await ana.click(".file-viewer-close")

    # Ana answers with the preparation sheet.
    await ana.set_input_files(
        "#reply-file", files=[{"name": "preparo.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await ana.fill("#reply-text", "Segue o preparo do exame.")
    await ana.press("#reply-text", "Enter")
    await expect(ana.locator("#timeline .file-link")).to_contain_text("preparo.pdf")
    [sent] = await provider.wait_for(
        lambda r: r.recipient == WA_ID and r.json.get("type") == "document"
    )
    assert sent.json["document"]["filename"] == "preparo.pdf"
    async with aiohttp.ClientSession() as http, http.get(sent.json["document"]["link"]) as got:
        assert (got.status, await got.read()) == (200, PDF)  # what WhatsApp fetches
    [text] = provider.sent(lambda r: r.recipient == WA_ID and r.text.startswith("Segue"))
    assert text.json["type"] == "text"

    # Her history in the portal links both files, and they open for her.
    await portal.goto(f"{base}/portal")
    links = portal.locator("#timeline a[href^='/api/portal/files/']")
    await expect(links).to_have_count(2)
    await expect(links.nth(1)).to_contain_text("preparo.pdf")
    pdf_link = await links.nth(1).get_attribute("href")
    photo_link = await links.nth(0).get_attribute("href")
    assert (await (await portal.request.get(base + pdf_link)).body()) == PDF
    assert (await (await portal.request.get(base + photo_link)).body()) == PNG

    # Another patient cannot open them.
    other = await (await browser.new_context()).new_page()
    await portal_patient(other, clinic, smtp_server, "Outro Paciente", "outro.arquivos@exemplo.com")
    for link in (pdf_link, photo_link):
        refused = await other.request.get(base + link)
        assert refused.status == 403
        assert (await refused.json())["error"] == t("files.error.forbidden")
