"""Reminders over the real processes: the worker from the Procfile sends a due reminder to a
patient chatting on the site widget, through the bot process, with the reply buttons."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Message, Reminder, ReminderStatus, utcnow
from models.db import Database
from scheduling import actions
from scheduling.agenda import find_slots
from scheduling.reminders import end_of_quiet, is_quiet
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration

WORKER_TICKS = 15  # seconds: a few runs of the worker's 5 s jobs


async def _reminder(db: Database, reminder_id: int) -> Reminder:
    async with db.session() as session:
        return await session.get(Reminder, reminder_id)


async def test_a_due_reminder_reaches_the_patient_on_the_site_chat_with_its_buttons(clinic):
    db = Database(clinic.settings.database_url)
    widget = WidgetClient(clinic.widget_socket_url)
    await widget.connect()
    try:
        ack = await widget.say("oi")
        await widget.next_reply("bot")
        async with db.session() as session:
            first = await session.get(Message, ack["message_id"])
            [slot] = await find_slots(session, now=utcnow() + timedelta(days=2), limit=1)
        appointment = await actions.book(
            db,
            patient_id=first.patient_id,
            doctor_id=slot.doctor_id,
            starts_at=slot.starts_at,
            channel="webchat",
        )
        now = utcnow()
        async with db.session() as session:
            # As if planned earlier and due now (its offset differs from the planned ones).
            reminder = Reminder(appointment_id=appointment.id, offset_minutes=1, due_at=now)
            session.add(reminder)

        if is_quiet(now):
            # Night in São Paulo: the worker holds it until 8h and the patient gets nothing.
            for _ in range(WORKER_TICKS * 10):
                if (await _reminder(db, reminder.id)).due_at != now:
                    break
                await asyncio.sleep(0.1)
            held = await _reminder(db, reminder.id)
            assert (held.status, held.due_at) == (ReminderStatus.PENDING, end_of_quiet(now))
            assert await widget.replies_within(0) == []
            return

        frame = await widget.next_reply("bot", timeout=WORKER_TICKS * 2)
        n = appointment.id
        assert "Lembrete da sua consulta na Clínica Vida Plena" in frame["text"]
        assert frame["buttons"] == [
            {"title": "Confirmar", "payload": f'/confirmar_presenca{{"appointment_id":"{n}"}}'},
            {"title": "Remarcar", "payload": f'/remarcar_consulta{{"appointment_id":"{n}"}}'},
            {"title": "Cancelar", "payload": f'/cancelar_consulta{{"appointment_id":"{n}"}}'},
        ]
        for _ in range(50):
            sent = await _reminder(db, reminder.id)
            if sent.status == ReminderStatus.SENT:
                break
            await asyncio.sleep(0.1)
        assert (sent.status, sent.channel, sent.message_id) == (
            ReminderStatus.SENT,
            "webchat",
            frame["id"],
        )
        async with db.session() as session:
            reminded = await session.get(Message, frame["id"])
            planned = await session.execute(
                select(Reminder.offset_minutes).where(Reminder.appointment_id == n)
            )
        # Into the conversation the patient is in, so tapping a button reaches the bot.
        assert reminded.conversation_id == first.conversation_id
        # The worker also planned the usual reminders of the new booking.
        assert sorted(planned.scalars()) == [1, 120, 1440]
    finally:
        await widget.close()
        await db.dispose()
