"""The "avisar e remarcar" flow in real Chromium: a manager sees the patients booked inside a
blocked day, tells them all with one click, and the agenda then shows who was told on which
channel and whom the desk must phone."""

from datetime import timedelta

import pytest
from playwright.async_api import expect

from models import PatientProfile, Role, User, utcnow
from models.db import Database
from scheduling import appointments
from scheduling.agenda import find_slots, to_local
from scheduling.reminders import is_quiet
from tests.clinic import STAFF_PASSWORD
from tests.e2e.accessibility import checked_context, serious_violations
from tests.e2e.conftest import show_agenda_day
from tests.integration.test_change_notices_slice import _book, _whatsapp_patient

pytestmark = pytest.mark.e2e


async def test_avisar_e_remarcar_tells_the_blocked_days_patients_and_shows_who_was_reached(
    clinic, browser
):
    db = Database(clinic.settings.database_url)
    try:
        async with db.session() as session:
            [first] = await find_slots(session, now=utcnow() + timedelta(days=60), limit=1)
            day_slots = await find_slots(
                session, now=first.starts_at - timedelta(minutes=1), doctor_id=first.doctor_id
            )
            # A patient known only by a typed phone nobody proved: no channel reaches them.
            unreachable = User(role=Role.PATIENT, name="Lia Prado", phone_e164="+5511944443333")
            unreachable.patient_profile = PatientProfile()
            session.add(unreachable)
        reachable = []
        for n, slot in enumerate(day_slots[:2]):
            patient, _, _ = await _whatsapp_patient(db, f"Caio Avisado {n}")
            reachable.append(await _book(db, patient, slot))
        phoned = await _book(db, unreachable, day_slots[2])
        day = to_local(first.starts_at).date()
        blocked = await appointments.block_time(
            db,
            doctor_id=first.doctor_id,
            starts_at=first.starts_at - timedelta(hours=1),
            ends_at=day_slots[2].ends_at,
            reason="congresso",
        )
    finally:
        await db.dispose()
    page = await (await checked_context(browser)).new_page()
    await page.goto(f"{clinic.settings.web_url}/login")
    await page.fill("#email", clinic.login_for("marta@").email)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{clinic.settings.web_url}/staff")
    await show_agenda_day(page, clinic, day)

    block = page.locator(f'.doctor-day [data-block-id="{blocked.exception.id}"]')
    patients = block.locator(".block-patients-list li")
    await expect(patients).to_have_count(3)
    await expect(patients.filter(has_text="Lia Prado")).to_contain_text("ainda não avisado")
    assert await serious_violations(page) == []
    await block.locator('[data-action="notify-block"]').click()

    await expect(page.locator("#block-result")).to_contain_text("3 paciente(s) avisado(s)")
    if is_quiet(utcnow()):  # night in São Paulo: held for the morning
        await expect(patients.filter(has_text="Lia Prado")).to_contain_text("aguardando envio")
        return
    for appointment in reachable:
        item = block.locator(f'li[data-appointment-id="{appointment.id}"]')
        await expect(item).to_contain_text("avisado por WhatsApp")
        row = page.locator(f'.agenda-row[data-appointment-id="{appointment.id}"]')
        await expect(row.locator('.notice[data-notice-kind="blocked"]')).to_have_text(
            "Aviso de remarcação: avisado por WhatsApp"
        )
    lia = block.locator(f'li[data-appointment-id="{phoned.id}"]')
    await expect(lia).to_contain_text("não foi possível avisar: ligue para o paciente")
    # Everyone was told or is the desk's to phone: no one is left to notify.
    await expect(block.locator('[data-action="notify-block"]')).to_have_count(0)
    assert await serious_violations(page) == []
