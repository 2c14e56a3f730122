"""The site widget's file picker in Chromium over the whole clinic: a visitor handed to an
attendant attaches a PDF from the keyboard and a photo (its thumbnail drawn from their own
disk under the platform's CSP); a program named as a photo is refused in pt-BR; the
attendant's workspace shows the PDF and it opens for her; the widget with its files passes
axe."""

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from core.catalog import t
from models import Message, StoredFile
from tests.channels.test_files_in import PNG
from tests.e2e.accessibility import checked_context, serious_violations
from tests.e2e.conftest import open_widget, open_workspace, reset_reception, say, tab_to

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64


def _file(name: str, mime_type: str, content: bytes) -> dict:
    return {"name": name, "mimeType": mime_type, "buffer": content}


async def _attach_from_the_keyboard(page: Page, file: dict) -> None:
    """Tab to the widget's attach button (it must be reachable from the keyboard), pick the
    file into its input; returns once the platform has kept it (the widget shows the file
    before its upload ends). The file goes straight into the input: Chromium's file chooser,
    opened by Enter, sometimes never reached the test under the full suite's load."""
    await tab_to(page, ".ocw-attach")
    async with page.expect_response(lambda r: r.url.endswith("/webhooks/webchat/files")) as up:
        await page.set_input_files(".ocw-file-input", files=[file])
    assert (await up.value).status == 201


async def test_a_visitor_attaches_a_pdf_in_the_widget_and_the_attendant_opens_it(
    clinic, browser, live_db
):
    await reset_reception(clinic)
    ana = await open_workspace(browser, clinic, "ana@")
    await ana.select_option("#presence", "online")
    visitor = await open_widget(browser, clinic)
    await say(visitor, "quero falar com um atendente")
    await expect(visitor.locator('.ocw-msg[data-author="system"]').last).to_contain_text(
        "entrou na conversa"
    )

    await _attach_from_the_keyboard(visitor, _file("pedido-exame.pdf", "application/pdf", PDF))
    sent = visitor.locator('.ocw-msg[data-author="patient"] .ocw-file').last
    await expect(sent).to_contain_text("pedido-exame.pdf")
    await visitor.set_input_files(
        ".ocw-file-input", files=[_file("carteirinha.png", "image/png", PNG)]
    )
    thumbnail = visitor.locator(".ocw-thumb").last
    await expect(thumbnail).to_have_attribute("alt", "Imagem enviada: carteirinha.png")
    await expect(thumbnail).to_be_visible()
    # Drawn from the visitor's own file (a 1 px PNG) once the browser has decoded it.
    await visitor.wait_for_function(
        "() => [...document.querySelectorAll('.ocw-thumb')].pop().naturalWidth === 1"
    )
    await visitor.set_input_files(
        ".ocw-file-input", files=[_file("foto.jpg", "image/jpeg", PROGRAM)]
    )
    await expect(visitor.locator(".ocw-error")).to_have_text(t("files.error.type"))
    await expect(visitor.locator(".ocw-file-name", has_text="foto.jpg")).to_have_count(0)

    async with live_db.session() as session:
        query = (
            select(Message.conversation_id)
            .join(StoredFile, StoredFile.message_id == Message.id)
            .where(StoredFile.filename == "pedido-exame.pdf")
        )
        conversation_id = (await session.execute(query)).scalar_one()
        refused = await session.scalar(select(StoredFile).where(StoredFile.filename == "foto.jpg"))
    assert refused is None
    await ana.locator(f'#mine [data-conversation-id="{conversation_id}"]').click()
    link = ana.locator("#timeline .file-link", has_text="pedido-exame.pdf")
    await expect(link).to_be_visible()
    opened = await ana.request.get(clinic.settings.web_url + await link.get_attribute("href"))
    assert (opened.status, await opened.body()) == (200, PDF)
    await expect(ana.locator("#timeline .file-thumb img")).to_have_count(1)


async def test_the_widget_with_a_sent_file_passes_axe(clinic, browser):
    page = await (await checked_context(browser)).new_page()
    await page.goto(f"{clinic.settings.web_url}/")
    await page.click(".ocw-launcher")
    await say(page, "oi")
    await page.set_input_files(".ocw-file-input", files=[_file("exame.png", "image/png", PNG)])
    await expect(page.locator(".ocw-thumb")).to_be_visible()

    assert await serious_violations(page, ".ocw-panel") == []
