"""The attendant books and reschedules for the patient in front of them, from the workspace,
in real Chromium: slot search, a click on a free time, and the appointment is the patient's;
then the manager blocks that doctor's day on the agenda page and is told of it."""

import re
from datetime import datetime

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from models import Appointment, AppointmentEvent, Conversation, User
from models.db import Database
from scheduling.agenda import to_local
from tests.e2e.conftest import hand_off, open_workspace, reset_reception, show_agenda_day

pytestmark = pytest.mark.e2e


async def _history(clinic, conversation_id: int) -> list[tuple[str, datetime, str, str, str]]:
    """Every change to the conversation's patient's appointments: (status after it, start,
    who made it, through which channel)."""
    db = Database(clinic.settings.database_url)
    try:
        async with db.session() as session:
            patient_id = (await session.get(Conversation, conversation_id)).patient_id
            rows = await session.execute(
                select(AppointmentEvent.to_status, Appointment.starts_at, User.email)
                .add_columns(AppointmentEvent.channel)
                .join(Appointment, Appointment.id == AppointmentEvent.appointment_id)
                .join(User, User.id == AppointmentEvent.actor_id)
                .where(Appointment.patient_id == patient_id)
                .order_by(AppointmentEvent.id)
            )
            return [tuple(row) for row in rows]
    finally:
        await db.dispose()


async def test_an_attendant_books_and_reschedules_for_the_patient(clinic, browser):
    await reset_reception(clinic)
    ana = clinic.login_for("ana@")
    page = await open_workspace(browser, clinic, "ana@")
    await page.select_option("#presence", "online")
    patient, conversation_id, holder = await hand_off(clinic, "quero marcar dermatologista")
    manager = None
    try:
        assert holder == ana.name
        await page.click(f'#mine [data-conversation-id="{conversation_id}"]')
        await expect(page.locator("#timeline")).to_contain_text("quero marcar dermatologista")

        # Book: specialty, any day, the nearest free times, one click.
        await page.click("#book-open")
        await page.select_option("#booking-specialty", label="Dermatologia")
        await page.click('#booking button[type="submit"]')
        await expect(page.locator("#booking-hint")).to_have_text(
            "Horários livres mais próximos — clique para agendar:"
        )
        first = page.locator("#booking-slots button").first
        booked_at = await first.get_attribute("data-starts-at")
        await expect(first).to_contain_text("Dra. Juliana Rocha")
        await first.click()

        appointments = page.locator("#appointments .appointment")
        await expect(appointments).to_have_count(1)
        await expect(appointments).to_contain_text("Dra. Juliana Rocha (Dermatologia) · agendada")
        await expect(page.locator("#timeline .entry.action")).to_contain_text("Consulta agendada")
        assert await _history(clinic, conversation_id) == [
            ("agendada", datetime.fromisoformat(booked_at), ana.email, "staff")
        ]

        # Reschedule it: same doctor, the panel opens on her, another time.
        await appointments.locator('[data-action="appointment_rescheduled"]').click()
        await expect(page.locator("#booking-title")).to_contain_text("Remarcar a consulta")
        await page.click('#booking button[type="submit"]')
        second = page.locator("#booking-slots button").first
        moved_to = await second.get_attribute("data-starts-at")
        assert moved_to != booked_at
        await second.click()

        await expect(page.locator("#timeline .entry.action").last).to_contain_text(
            "Consulta remarcada"
        )
        await expect(appointments).to_have_count(1)
        shown = to_local(datetime.fromisoformat(moved_to)).strftime("%d/%m.*%H:%M")
        await expect(appointments).to_contain_text(re.compile(shown))
        assert await _history(clinic, conversation_id) == [
            ("agendada", datetime.fromisoformat(booked_at), ana.email, "staff"),
            ("cancelada", datetime.fromisoformat(booked_at), ana.email, "staff"),
            ("agendada", datetime.fromisoformat(moved_to), ana.email, "staff"),
        ]

        # The manager blocks the doctor's day: the appointment in it is reported, not cancelled.
        manager = await open_workspace(browser, clinic, "marta@")
        day = to_local(datetime.fromisoformat(moved_to)).date()
        await show_agenda_day(manager, clinic, day)
        await manager.locator("#block-doctor").select_option(
            label="Dra. Juliana Rocha (Dermatologia)"
        )
        await manager.fill("#block-from", f"{day.isoformat()}T00:00")
        await manager.fill("#block-to", f"{day.isoformat()}T23:59")
        await manager.fill("#block-reason", "congresso")
        await manager.click('#block button[type="submit"]')
        clock = to_local(datetime.fromisoformat(moved_to)).strftime("%H:%M")
        await expect(manager.locator("#block-result ul.conflicts")).to_contain_text(
            re.compile(f"{clock}.*agendada")
        )
        column = manager.locator(".doctor-day", has_text="Dra. Juliana Rocha")
        await expect(column.locator(".agenda-row.free")).to_have_count(0)
        await expect(column.locator(".agenda-row.status-agendada", has_text=clock)).to_be_visible()
        await column.locator('[data-action="unblock"]').click()
        await expect(column.locator(".agenda-row.blocked")).to_have_count(0)
        await expect(column.locator(".agenda-row.free").first).to_be_visible()
    finally:
        await patient.close()
        await page.context.close()
        if manager is not None:
            await manager.context.close()
        await reset_reception(clinic)
