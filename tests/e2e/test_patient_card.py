"""The patient's card beside the conversation, in real Chromium against the running clinic:
a manager compares two records of one patient side by side and merges them, and the timeline
says so; an attendant changes the preferred channel of the patient they serve, and the audit
log keeps it."""

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from models import AuditLog, Conversation, User
from models.db import Database
from tests.e2e.accessibility import serious_violations
from tests.e2e.conftest import hand_off, open_workspace, reset_reception

pytestmark = pytest.mark.e2e


async def _rows(clinic, query):
    db = Database(clinic.settings.database_url)
    try:
        async with db.session() as session:
            return (await session.execute(query)).all()
    finally:
        await db.dispose()


async def _patient_of(clinic, conversation_id: int) -> int:
    query = select(Conversation.patient_id).where(Conversation.id == conversation_id)
    return (await _rows(clinic, query))[0][0]


def _item(page, list_id: str, conversation_id: int):
    return page.locator(f'#{list_id} [data-conversation-id="{conversation_id}"]')


async def test_a_manager_merges_two_records_and_the_timeline_explains_it(clinic, browser):
    await reset_reception(clinic)
    ana = await open_workspace(browser, clinic, "ana@")
    await ana.select_option("#presence", "online")
    marta = await open_workspace(browser, clinic, "marta@", checked=True)
    patients = []
    try:
        first, c1, _ = await hand_off(clinic, "sou a Maria Souza, escrevi pelo celular")
        patients.append(first)
        second, c2, _ = await hand_off(clinic, "sou a Maria Souza de novo, pelo computador")
        patients.append(second)
        kept, merged = await _patient_of(clinic, c1), await _patient_of(clinic, c2)
        assert kept != merged  # two visitors, two records of one person

        await _item(marta, "others", c1).click()
        card = marta.locator("#patient-card")
        await expect(card.locator("#card-number")).to_have_text(f"Cadastro nº {kept}")
        await card.locator("#card-merge-open").click()
        await marta.fill("#card-merge-other", str(merged))
        await marta.click("#card-merge-compare")
        columns = marta.locator(".card-compare-column")
        await expect(columns).to_have_count(2)
        await expect(columns.nth(0)).to_contain_text(f"Cadastro nº {kept}")
        await expect(columns.nth(1)).to_contain_text(f"Cadastro nº {merged}")
        await expect(columns.nth(0).locator("input[type=radio]")).to_be_checked()
        assert await serious_violations(marta, "#card-merge") == [], "the merge dialog"

        asked = []

        async def confirm(dialog):
            asked.append(dialog.message)
            await dialog.accept()

        marta.once("dialog", confirm)
        await marta.click("#card-merge-submit")
        await expect(marta.locator("#card-merge-result")).to_contain_text(
            f"Cadastros unidos: o nº {merged} agora faz parte do nº {kept}."
        )
        assert asked and "Não dá para desfazer" in asked[0]
        await expect(marta.locator("#card-merge-result")).to_contain_text(
            "Conversas encerradas na união: 1"
        )
        await marta.click("#card-merge-close")

        timeline = marta.locator("#timeline")
        await expect(timeline).to_contain_text(
            f"Cadastros unidos: o cadastro nº {merged} foi unido a este"
        )
        await expect(timeline).to_contain_text("pelo computador")  # the other record's history
        await expect(timeline).to_contain_text("Conversa encerrada ao unir os cadastros")
        await expect(_item(ana, "mine", c2)).to_have_count(0)
        await expect(_item(ana, "mine", c1)).to_be_visible()
        [(active, merged_into)] = await _rows(
            clinic, select(User.is_active, User.merged_into_id).where(User.id == merged)
        )
        assert (active, merged_into) == (False, kept)
    finally:
        for patient in patients:
            await patient.close()
        for page in (ana, marta):
            await page.context.close()
        await reset_reception(clinic)


async def test_an_attendant_changes_the_preferred_channel_and_it_is_audited(clinic, browser):
    await reset_reception(clinic)
    page = await open_workspace(browser, clinic, "ana@", checked=True)
    await page.select_option("#presence", "online")
    patient = None
    try:
        patient, conversation_id, _ = await hand_off(clinic, "podem me mandar os lembretes?")
        patient_id = await _patient_of(clinic, conversation_id)
        await _item(page, "mine", conversation_id).click()
        preferred = page.locator('#patient-card [data-field="preferred_channel"]')
        await expect(preferred).to_have_text("Chat do site")

        assert await serious_violations(page, "#patient-card") == [], "the card"
        await page.click("#card-edit")
        assert await serious_violations(page, "#patient-card") == [], "the card's form"
        await page.select_option("#card-edit-preferred", "")
        await page.fill("#card-edit-notes", "Não quer lembretes pelo site.")
        await page.click('#card-edit-form button[type="submit"]')

        await expect(page.locator("#card-message")).to_have_text("Cadastro salvo.")
        await expect(preferred).to_have_text("Sem preferência")
        await expect(page.locator("#patient-card .card-notes")).to_have_text(
            "Não quer lembretes pelo site."
        )
        entries = await _rows(
            clinic,
            select(AuditLog.actor_id, AuditLog.details).where(
                AuditLog.action == "patient_updated", AuditLog.patient_id == patient_id
            ),
        )
        ana = clinic.login_for("ana@")
        [(actor_id, details)] = entries
        assert details == {"fields": ["notes", "preferred_channel"]}
        actor = await _rows(clinic, select(User.email).where(User.id == actor_id))
        assert actor[0][0] == ana.email
    finally:
        if patient is not None:
            await patient.close()
        await page.context.close()
        await reset_reception(clinic)
