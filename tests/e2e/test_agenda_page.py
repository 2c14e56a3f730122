"""The staff agenda page in real Chromium: a manager finds the day's appointment under its
doctor and confirms it."""

from datetime import timedelta

import pytest
from playwright.async_api import expect

from models import PatientProfile, Reminder, ReminderStatus, Role, User, utcnow
from models.db import Database
from scheduling import appointments
from scheduling.agenda import find_slots, to_local
from tests.clinic import STAFF_PASSWORD
from tests.e2e.conftest import open_workspace, show_agenda_day
from tests.factories import clinic_rules, patient_message

pytestmark = pytest.mark.e2e


async def test_a_manager_confirms_an_appointment_from_the_days_agenda(clinic, browser):
    db = Database(clinic.settings.database_url)
    try:
        recorded = await patient_message(db, "oi", display_name="Helena Prado")
        async with db.session() as session:
            [slot] = await find_slots(session, now=utcnow() + timedelta(days=3), limit=1)
        appointment = await appointments.book(
            db,
            clinic_rules(),
            patient_id=recorded.message.patient_id,
            doctor_id=slot.doctor_id,
            starts_at=slot.starts_at,
            channel="webchat",
            self_service=False,
        )
    finally:
        await db.dispose()
    marta = clinic.login_for("marta@")
    page = await (await browser.new_context()).new_page()

    await page.goto(f"{clinic.settings.web_url}/staff/agenda")
    await expect(page).to_have_url(f"{clinic.settings.web_url}/login")
    await page.fill("#email", marta.email)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{clinic.settings.web_url}/staff")
    await show_agenda_day(page, clinic, to_local(slot.starts_at).date())

    column = page.locator(f'.doctor-day[data-doctor-id="{slot.doctor_id}"]')
    await expect(column.locator("h2")).to_have_text(slot.doctor_name)
    row = column.locator(f'[data-appointment-id="{appointment.id}"]')
    await expect(row).to_contain_text("Helena Prado")
    await expect(row.locator(".status")).to_have_text("agendada")
    await expect(row.locator(".time")).to_have_text(to_local(slot.starts_at).strftime("%H:%M"))

    await row.locator('[data-action="confirm"]').click()

    await expect(column.locator(f'[data-appointment-id="{appointment.id}"] .status')).to_have_text(
        "confirmada"
    )


async def test_an_appointment_no_reminder_could_reach_is_flagged_for_a_call(clinic, browser):
    db = Database(clinic.settings.database_url)
    try:
        async with db.session() as session:
            patient = User(role=Role.PATIENT, name="Iara Nunes", phone_e164="+5511955554444")
            patient.patient_profile = PatientProfile()
            session.add(patient)
            [slot] = await find_slots(session, now=utcnow() + timedelta(days=4), limit=1)
        appointment = await appointments.book(
            db,
            clinic_rules(),
            patient_id=patient.id,
            doctor_id=slot.doctor_id,
            starts_at=slot.starts_at,
            channel="telefone",
            self_service=False,
        )
        # What the reminder worker records for a patient with no channel it can use.
        async with db.session() as session:
            session.add(
                Reminder(
                    appointment_id=appointment.id,
                    offset_minutes=1440,
                    due_at=utcnow(),
                    status=ReminderStatus.FAILED,
                    error="no_channel",
                )
            )
    finally:
        await db.dispose()
    page = await open_workspace(browser, clinic, "marta@")

    await show_agenda_day(page, clinic, to_local(slot.starts_at).date())

    row = page.locator(f'[data-appointment-id="{appointment.id}"]')
    await expect(row.locator(".call-patient")).to_have_text(
        "Ligar para o paciente: nenhum lembrete chegou (sem canal que alcance o paciente)."
    )
