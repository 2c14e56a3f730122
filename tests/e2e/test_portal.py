"""A patient signs up and books on the portal; the admin edits the clinic's data. In Chromium."""

import re

import pytest
from playwright.async_api import expect

from tests.clients import StaffClient
from tests.clinic import STAFF_PASSWORD
from tests.e2e.conftest import bot_said, portal_patient, say

pytestmark = pytest.mark.e2e


async def test_a_patient_signs_up_and_books_an_appointment(clinic, browser, smtp_server):
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{clinic.settings.web_url}/cadastro")
    await page.fill("input[name=name]", "Helena Martins")
    await page.fill("input[name=email]", "helena.martins@exemplo.com")
    await page.fill("input[name=phone]", "(21) 99876-5432")
    await page.fill("input[name=cpf]", "390.533.447-05")
    await page.fill("input[name=password]", "senha-da-helena")
    await page.check("input[name=consent]")
    await page.click("button[type=submit]")
    await expect(page.locator("#signup-status")).to_contain_text("Enviamos um e-mail")

    # The link mailed to the address confirms it; only then does the login open the portal.
    mail = (await smtp_server.wait_for("helena.martins@exemplo.com"))[-1]
    link = re.search(r"https?://\S+#token=[\w-]+", mail.get_content()).group(0)
    await page.goto(f"{clinic.settings.web_url}/verificar-email#{link.split('#', 1)[1]}")
    await expect(page.locator("#verify-status")).to_have_text(
        "E-mail confirmado! Agora você já pode entrar com seu e-mail e senha."
    )
    await page.goto(f"{clinic.settings.web_url}/login")
    await page.fill("#email", "helena.martins@exemplo.com")
    await page.fill("#password", "senha-da-helena")
    await page.click("button[type=submit]")

    await expect(page).to_have_url(f"{clinic.settings.web_url}/portal")
    await expect(page.locator("#patient-name")).to_have_text("Helena Martins")
    await expect(page.locator("#appointments")).to_contain_text("Você não tem consultas marcadas.")

    await page.select_option("#specialty", label="Dermatologia")
    await page.click("#slot-search button[type=submit]")
    first_slot = page.locator("#slots button").first
    await expect(first_slot).to_be_visible()
    chosen = await first_slot.text_content()
    await first_slot.click()

    await expect(page.locator("#booking-status")).to_contain_text("Consulta agendada")
    await expect(page.locator("#appointments li")).to_have_count(1)
    await expect(page.locator("#appointments")).to_contain_text(chosen.split(" · ")[0])
    await expect(page.locator("#appointments")).to_contain_text("agendada")


async def test_a_signup_with_a_wrong_cpf_explains_why(clinic, browser):
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{clinic.settings.web_url}/cadastro")
    await page.fill("input[name=name]", "Caio Prado")
    await page.fill("input[name=email]", "caio@exemplo.com")
    await page.fill("input[name=phone]", "(11) 91111-2222")
    await page.fill("input[name=cpf]", "123.456.789-00")
    await page.fill("input[name=password]", "senha-do-caio")
    await page.check("input[name=consent]")
    await page.click("button[type=submit]")

    await expect(page.locator("#signup-error")).to_have_text("CPF inválido. Confira os números.")
    await expect(page).to_have_url(re.compile(r"/cadastro$"))


@pytest.fixture
async def clinic_profile_restored(clinic):
    """The clinic is shared by the whole session: put its data back as it was."""
    admin = StaffClient(clinic.settings.web_url)
    await admin.login(clinic.login_for("admin@").email, STAFF_PASSWORD)
    _, original = await admin.request("GET", "/api/admin/clinic")
    yield
    status, _ = await admin.request("PUT", "/api/admin/clinic", original)
    assert status == 200
    await admin.close()


async def test_the_admin_edits_the_clinic_data(clinic, browser, clinic_profile_restored):
    admin = clinic.login_for("admin@")
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{clinic.settings.web_url}/login")
    await page.fill("#email", admin.email)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{clinic.settings.web_url}/staff")
    await page.goto(f"{clinic.settings.web_url}/staff/admin")

    convenios = page.locator("textarea[name=convenios]")
    await expect(convenios).to_have_value(re.compile("Unimed"))
    await convenios.fill("Unimed\nAmil\nCassi")
    await page.click("#clinic-form button[type=submit]")
    await expect(page.locator("#clinic-status")).to_have_text(
        "Salvo. O assistente já responde com os novos dados."
    )

    await page.reload()
    await expect(page.locator("textarea[name=convenios]")).to_have_value("Unimed\nAmil\nCassi")
    await expect(page.locator("#staff-table")).to_contain_text("ana@vidaplena.demo")


async def test_a_logged_in_patient_chats_in_the_widget_as_themselves(clinic, browser, smtp_server):
    page = await (await browser.new_context()).new_page()
    await portal_patient(page, clinic, smtp_server, "Bia Conectada", "bia.conectada@exemplo.com")
    await expect(page.locator("#timeline")).to_contain_text("Você ainda não trocou mensagens")

    await page.click(".ocw-launcher")
    await say(page, "quais convênios vocês aceitam?")
    await expect(bot_said(page)).to_contain_text("Unimed")

    # No identity step: the chat is in her record, so her portal history shows it.
    await page.reload()
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("quais convênios vocês aceitam?")
    await expect(timeline.locator("li.from-bot")).to_contain_text("Unimed")
    # And the widget, reopened, shows the same conversation.
    await page.click(".ocw-launcher")
    await expect(page.locator(".ocw-msg").first).to_contain_text("quais convênios")
