"""Reminders over the real processes: the worker from the Procfile sends a due reminder to a
patient chatting on the site widget, through the bot process, with the reply buttons."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Message, Reminder, ReminderStatus, utcnow
from models.db import Database
from scheduling import appointments
from scheduling.agenda import find_slots
from scheduling.reminders import end_of_quiet, is_quiet
from tests.clients import WidgetClient
from tests.clinic import WORKER_TICKS, soon
from tests.factories import clinic_rules

pytestmark = pytest.mark.integration


async def test_a_due_reminder_reaches_the_patient_on_the_site_chat_with_its_buttons(clinic):
    db = Database(clinic.settings.database_url)
    widget = WidgetClient(clinic.widget_socket_url)

    async def reminder() -> Reminder:
        async with db.session() as session:
            return await session.get(Reminder, reminder_id)

    async def planned_offsets() -> list[int]:
        async with db.session() as session:
            query = select(Reminder.offset_minutes).where(Reminder.appointment_id == appointment.id)
            return sorted((await session.execute(query)).scalars())

    await widget.connect()
    try:
        ack = await widget.say("oi")
        await widget.next_reply("bot")
        async with db.session() as session:
            first = await session.get(Message, ack["message_id"])
            [slot] = await find_slots(session, now=utcnow() + timedelta(days=2), limit=1)
        appointment = await appointments.book(
            db,
            clinic_rules(),
            patient_id=first.patient_id,
            doctor_id=slot.doctor_id,
            starts_at=slot.starts_at,
            channel="webchat",
            self_service=False,
        )
        now = utcnow()
        async with db.session() as session:
            # As if planned earlier and due now (its offset differs from the planned ones).
            due = Reminder(appointment_id=appointment.id, offset_minutes=1, due_at=now)
            session.add(due)
        reminder_id = due.id

        if is_quiet(now):
            # Night in São Paulo: the worker holds it until 8h and the patient gets nothing.
            held = await soon(reminder, lambda r: r.due_at != now)
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
        sent = await soon(reminder, lambda r: r.status == ReminderStatus.SENT)
        assert (sent.status, sent.channel, sent.message_id) == (
            ReminderStatus.SENT,
            "webchat",
            frame["id"],
        )
        async with db.session() as session:
            reminded = await session.get(Message, frame["id"])
        # Into the conversation the patient is in, so tapping a button reaches the bot.
        assert reminded.conversation_id == first.conversation_id
        # The worker also plans the usual reminders of the new booking (its own 5 s job).
        assert await soon(planned_offsets, lambda o: len(o) == 3) == [1, 120, 1440]
    finally:
        await widget.close()
        await db.dispose()
