"""The issue's "done when", over real HTTP with the real WhatsApp channel against the fake
provider: a patient signs up in the portal, proves their phone, books, is reminded by the
WhatsApp template without ever having written to the clinic, answers, sees the exchange in
"Histórico de mensagens", and reschedules in the portal."""

from __future__ import annotations

from sqlalchemy import select

from models import Reminder, ReminderStatus, utcnow
from scheduling.reminders import dispatch_due, plan_reminders
from scripts.demo_clinic import add_agenda
from tests.factories import patient_message
from tests.portal.test_phone_proof import MARIA, PHONE, WA_ID, _code, server  # noqa: F401
from tests.portal.test_portal_appointments import _book_first, _first_slot
from tests.webapp import signed_up
from web.keys import CTX


async def test_signed_up_booked_reminded_on_whatsapp_answered_and_rescheduled(
    server,  # noqa: F811 (the web app whose WhatsApp talks to the fake provider)
    provider,
    smtp_server,
):
    ctx = server.app[CTX]
    async with ctx.db.session() as session:
        add_agenda(session, [utcnow().year, utcnow().year + 1])
    http = await signed_up(server, smtp_server, MARIA)
    try:
        async with http.post("/api/portal/me/phone/code") as response:
            assert response.status == 202
        async with http.post("/api/portal/me/phone/confirm", json={"code": _code(provider)}):
            pass
        provider.reset()
        appointment_id, _ = await _book_first(http, "Cardiologia")

        await plan_reminders(ctx)
        async with ctx.db.session() as session:
            query = select(Reminder).where(Reminder.appointment_id == appointment_id)
            due = min(r.due_at for r in (await session.execute(query)).scalars())
        await dispatch_due(ctx, clock=lambda: due)

        [reminder] = provider.sent_to(WA_ID)
        assert reminder.json["type"] == "template"  # she never wrote: outside any window
        async with ctx.db.session() as session:
            sent = await session.execute(query.where(Reminder.status == ReminderStatus.SENT))
            assert sent.scalars().first().channel == "whatsapp"

        answer = await patient_message(
            ctx.db, "Confirmo, estarei lá", channel="whatsapp", user=WA_ID, phone=PHONE
        )
        async with http.get("/api/portal/messages") as response:
            timeline = [(m["author_kind"], m["channel"]) for m in await response.json()]
        assert ("bot", "whatsapp") in timeline  # the reminder
        assert timeline[-1] == ("patient", "whatsapp")
        assert answer.message.patient_id == (await (await http.get("/api/portal/me")).json())["id"]

        later = await _first_slot(http, "Cardiologia")
        async with http.post(
            f"/api/portal/appointments/{appointment_id}/reschedule",
            json={"doctor_id": later["doctor_id"], "starts_at": later["starts_at"]},
        ) as response:
            assert response.status == 201, await response.text()
    finally:
        await http.close()
