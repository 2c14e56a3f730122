"""The patient's appointment dialogues in the site widget, in real Chromium over the whole
clinic: booking by tapping the offered buttons, the reminder that follows and its Confirmar
(seen confirmed on the staff agenda), then rescheduling and cancelling."""

import re
from datetime import datetime, timedelta

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from models import Appointment, AppointmentStatus, Reminder, User, utcnow
from models.db import Database
from processes.worker import build_context
from scheduling.agenda import to_local
from scheduling.reminders import end_of_quiet, is_quiet, send_now
from tests.clinic import WORKER_TICKS, soon
from tests.e2e.conftest import (
    bot_said,
    open_widget,
    open_workspace,
    say,
    show_agenda_day,
    tap,
    widget_token,
)
from tests.factories import booked, fresh_cpf, returning_patient, widget_patient

pytestmark = pytest.mark.e2e

DAY_BEFORE = 24 * 60  # minutes: the default reminder
# Room for the worker (5 s ticks, slower under load) to send before quiet hours begin.
DISPATCH_MARGIN = timedelta(minutes=2)


async def _appointments(db: Database, patient_id: int) -> list[Appointment]:
    async with db.session() as session:
        query = select(Appointment).where(Appointment.patient_id == patient_id)
        return list((await session.execute(query.order_by(Appointment.id))).scalars())


async def _make_the_day_before_arrive(clinic, db: Database, appointment: Appointment) -> None:
    """Bring the moment of the appointment's day-before reminder to now. By day the worker
    process sends it. In quiet hours (21h-8h) the worker rightly holds every reminder until
    8h, and so does the staff "Enviar lembrete": then it goes out as the staff button sends
    it at 8h, through the same dispatch and Sender, with the clock at 8h."""
    now = utcnow()
    if is_quiet(now) or is_quiet(now + DISPATCH_MARGIN):
        morning = end_of_quiet(now + DISPATCH_MARGIN)
        async with db.session() as session:
            query = select(User.id).where(User.email == clinic.login_for("marta@").email)
            manager_id = (await session.execute(query)).scalar_one()
        ctx = build_context(clinic.settings)
        try:
            await send_now(ctx, appointment.id, actor_id=manager_id, clock=lambda: morning)
        finally:
            await ctx.close()
        return
    async with db.session() as session:
        query = select(Reminder).where(
            Reminder.appointment_id == appointment.id, Reminder.offset_minutes == DAY_BEFORE
        )
        (await session.execute(query)).scalar_one().due_at = now


async def test_a_patient_books_in_the_widget_confirms_the_reminder_and_the_agenda_shows_it(
    clinic, live_db, browser
):
    patient = await open_widget(browser, clinic)

    # Booking: a new patient identifies, then taps the specialty, a time and "Sim".
    await say(patient, "oi, quero marcar uma consulta")
    await expect(bot_said(patient)).to_contain_text("LGPD")
    await tap(patient, "Concordo")
    await expect(bot_said(patient)).to_have_text("Qual é o seu nome completo?")
    await say(patient, "Lívia Castro Menezes")
    await expect(bot_said(patient)).to_contain_text("CPF")
    await say(patient, fresh_cpf())
    await expect(bot_said(patient)).to_contain_text("Se houver um cadastro com esses dados")
    await say(patient, "pular")
    await expect(bot_said(patient)).to_contain_text("telefone")
    await say(patient, "(31) 99123-4567")
    await expect(bot_said(patient)).to_contain_text("Se houver um cadastro com esses dados")
    await say(patient, "pular")
    await expect(bot_said(patient)).to_have_text(
        "Com qual especialidade ou médico você quer a consulta?"
    )
    # Meanwhile she confirmed her e-mail on the portal: booking needs a confirmed contact.
    user = await widget_patient(live_db, await widget_token(patient))
    async with live_db.session() as session:
        confirmed = await session.get_one(User, user.id)
        confirmed.email, confirmed.email_verified_at = "livia@exemplo.com", utcnow()
    await tap(patient, "Cardiologia")
    await expect(bot_said(patient)).to_contain_text("Para quando você prefere?")
    await say(patient, "daqui a uma semana à tarde")
    first_slot = patient.locator(".ocw-buttons button").first
    await expect(first_slot).to_be_visible()
    await first_slot.click()
    await expect(bot_said(patient)).to_contain_text("Confirma a consulta de Cardiologia")
    await tap(patient, "Sim, confirmar")
    await expect(bot_said(patient)).to_contain_text("está marcada para")

    user = await widget_patient(live_db, await widget_token(patient))
    [appointment] = await _appointments(live_db, user.id)
    assert appointment.status == AppointmentStatus.SCHEDULED

    # The worker plans the reminder for 24 h before the appointment.
    async def planned() -> dict[int, datetime]:
        async with live_db.session() as session:
            query = select(Reminder).where(Reminder.appointment_id == appointment.id)
            rows = (await session.execute(query)).scalars()
            return {r.offset_minutes: r.due_at for r in rows}

    reminders = await soon(planned, lambda due: DAY_BEFORE in due)
    assert reminders.get(DAY_BEFORE) == appointment.starts_at - timedelta(minutes=DAY_BEFORE)

    # That moment comes: the reminder appears in the widget with its three buttons.
    await _make_the_day_before_arrive(clinic, live_db, appointment)
    await expect(bot_said(patient)).to_contain_text(
        "Lembrete da sua consulta na Clínica Vida Plena", timeout=WORKER_TICKS * 2_000
    )
    await expect(patient.locator(".ocw-buttons button")).to_have_text(
        ["Confirmar", "Remarcar", "Cancelar"]
    )
    await tap(patient, "Confirmar")
    await expect(bot_said(patient)).to_contain_text("Presença confirmada!")

    # The manager's agenda shows it confirmed, and the reminder sent on the site chat.
    manager = await open_workspace(browser, clinic, "marta@")
    await show_agenda_day(manager, clinic, to_local(appointment.starts_at).date())
    row = manager.locator(
        f'.doctor-day[data-doctor-id="{appointment.doctor_id}"] '
        f'[data-appointment-id="{appointment.id}"]'
    )
    await expect(row).to_contain_text("Lívia Castro Menezes")
    await expect(row.locator(".status")).to_have_text("confirmada")
    await expect(row.locator(".reminders")).to_contain_text("enviado (Chat do site)")


async def test_a_returning_patient_reschedules_and_cancels_by_tapping_in_the_widget(
    clinic, live_db, browser
):
    patient = await open_widget(browser, clinic)
    await say(patient, "oi")
    await expect(bot_said(patient)).to_contain_text("assistente virtual")
    user = await widget_patient(live_db, await widget_token(patient))
    user = await returning_patient(live_db, user.id)
    cardiology = await booked(live_db, user, "Ricardo")
    paediatrics = await booked(live_db, user, "Camila")

    # Rescheduling: which appointment, when, the new time, "Sim, remarcar".
    await say(patient, "preciso remarcar uma consulta")
    await expect(bot_said(patient)).to_have_text("Qual consulta?")
    await expect(patient.locator(".ocw-buttons button")).to_have_count(2)
    await tap(patient, re.compile("Dra. Camila Nunes"))
    await expect(bot_said(patient)).to_contain_text("Para quando você quer passar a consulta")
    await say(patient, "qualquer dia")
    new_slot = patient.locator(".ocw-buttons button").first
    await expect(new_slot).to_be_visible()
    _, day, hour = (await new_slot.text_content()).split(" ")
    await new_slot.click()
    await expect(bot_said(patient)).to_contain_text("Confirma a troca da consulta")
    await tap(patient, "Sim, remarcar")
    await expect(bot_said(patient)).to_contain_text(
        re.compile(f"remarcada para .*{day} às {hour} com Dra. Camila Nunes")
    )

    # Cancelling: which appointment, then "Sim, cancelar".
    await say(patient, "quero cancelar uma consulta")
    await expect(bot_said(patient)).to_have_text("Qual consulta?")
    await tap(patient, re.compile("Dr. Ricardo Alves"))
    await expect(bot_said(patient)).to_contain_text(
        "Confirma o cancelamento da consulta de Cardiologia"
    )
    await tap(patient, "Sim, cancelar")
    await expect(bot_said(patient)).to_contain_text("foi cancelada")

    # What is left: the paediatrics appointment at its new time.
    await say(patient, "quais são as minhas consultas?")
    listing = bot_said(patient)
    await expect(listing).to_contain_text("Suas próximas consultas")
    await expect(listing).to_contain_text(f"{day} às {hour}: Pediatria com Dra. Camila Nunes")
    await expect(listing).not_to_contain_text("Ricardo")

    before_cardiology, before_paediatrics, moved = await _appointments(live_db, user.id)
    assert (before_cardiology.id, before_cardiology.status) == (
        cardiology.id,
        AppointmentStatus.CANCELLED,
    )
    assert (before_paediatrics.id, before_paediatrics.status) == (
        paediatrics.id,
        AppointmentStatus.CANCELLED,
    )
    assert (moved.status, moved.rescheduled_from_id) == (
        AppointmentStatus.SCHEDULED,
        paediatrics.id,
    )
