"""The staff agenda and appointment endpoints over real HTTP, on both databases: who may see
and do what, audit of reads, and the agenda's refusals in Portuguese."""

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from handoff import actions as handoff_actions
from handoff.web.app import create_app
from handoff.web.keys import CTX
from models import AppointmentEvent, AuditLog, Reminder, Role, utcnow
from scheduling import actions, reminders
from scheduling.agenda import find_slots, to_local
from tests.factories import patient_message, staff
from tests.fakes import RecordingBotApi, RecordingSender
from tests.scheduling.conftest import sp

PASSWORD = "senha-segura"


@pytest.fixture
async def server(settings, agenda) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(settings))
    await server.start_server()
    server.app[CTX].senders = {"webchat": RecordingSender()}
    server.app[CTX].bot = RecordingBotApi()
    yield server
    await server.close()


@pytest.fixture
def daytime(monkeypatch):
    """Reminders may be sent: the clinic clock reads a weekday afternoon, whenever the test
    runs (appointments are booked after it)."""
    afternoon = sp(2030, 3, 12, 15)
    monkeypatch.setattr(reminders, "utcnow", lambda: afternoon)
    return afternoon


class Staff:
    def __init__(self, server: TestServer, user) -> None:
        self.user = user
        self.http = aiohttp.ClientSession(
            base_url=str(server.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )

    async def __aenter__(self):
        async with self.http.post(
            "/api/login", json={"email": self.user.email, "password": PASSWORD}
        ) as response:
            assert response.status == 200
        return self.http

    async def __aexit__(self, *exc):
        await self.http.close()


async def _patient_with_appointment(ctx, after):
    """A webchat patient (as the widget creates them) booked on the first free slot."""
    recorded = await patient_message(ctx.db, "quero marcar consulta", display_name="Maria Souza")
    async with ctx.db.session() as session:
        [slot] = await find_slots(session, now=after + timedelta(days=1), limit=1)
    appointment = await actions.book(
        ctx.db,
        patient_id=recorded.message.patient_id,
        doctor_id=slot.doctor_id,
        starts_at=slot.starts_at,
        channel="webchat",
    )
    return recorded, appointment


async def test_the_agenda_needs_a_staff_login(server):
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        async with http.get("/api/agenda") as response:
            assert response.status == 401
        async with http.post("/api/appointments/1/confirm") as response:
            assert response.status == 401
        async with http.get("/staff/agenda", allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/login"


async def test_staff_see_the_days_agenda_per_doctor_with_statuses(server):
    ctx = server.app[CTX]
    _, appointment = await _patient_with_appointment(ctx, utcnow())
    await actions.confirm(ctx.db, appointment.id, channel="webchat")
    attendant = await staff(ctx.db)
    day = to_local(appointment.starts_at).date().isoformat()

    async with Staff(server, attendant) as http:
        async with http.get("/api/agenda", params={"day": day}) as response:
            assert response.status == 200
            agenda = await response.json()
        async with http.get("/staff/agenda") as response:
            assert response.status == 200
            assert 'data-t="agenda.title"' in await response.text()
        async with http.get("/api/agenda", params={"day": "amanhã"}) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "Parâmetro inválido: day."

    column = next(d for d in agenda["doctors"] if d["doctor"]["id"] == appointment.doctor_id)
    [listed] = column["appointments"]
    assert (listed["patient_name"], listed["status"]) == ("Maria Souza", "confirmada")
    assert appointment.starts_at.isoformat() not in column["free"]
    async with ctx.db.session() as session:
        audited = (await session.execute(select(AuditLog.action))).scalars().all()
    assert audited == ["read_agenda"]


async def test_an_attendant_acts_only_on_patients_of_conversations_assigned_to_them(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, capacity=1)
    recorded, appointment = await _patient_with_appointment(ctx, utcnow())
    await handoff_actions.request_handoff(ctx, recorded.conversation.id, reason="agendamento")
    bruno = await staff(ctx.db)  # joins after Ana took the conversation
    patient_id = recorded.message.patient_id

    async with Staff(server, bruno) as http:
        async with http.get(f"/api/patients/{patient_id}/appointments") as response:
            assert response.status == 403
        async with http.post(f"/api/appointments/{appointment.id}/confirm") as response:
            assert response.status == 403
            assert (await response.json())["error"] == (
                "Você só pode agir nas consultas de pacientes cuja conversa está com você."
            )
    async with Staff(server, ana) as http:
        async with http.get(f"/api/patients/{patient_id}/appointments") as response:
            assert response.status == 200
            [listed] = await response.json()
        async with http.post(f"/api/appointments/{appointment.id}/confirm") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "confirmada"

    assert listed["id"] == appointment.id and listed["status"] == "agendada"
    async with ctx.db.session() as session:
        event = (
            await session.execute(
                select(AppointmentEvent).where(AppointmentEvent.to_status == "confirmada")
            )
        ).scalar_one()
        reads = (await session.execute(select(AuditLog))).scalars().all()
    assert (event.actor_id, event.channel) == (ana.id, "staff")
    assert [(r.actor_id, r.action, r.patient_id) for r in reads] == [
        (ana.id, "read_appointments", patient_id)
    ]


async def test_a_manager_cancels_marks_attendance_and_gets_refusals_in_portuguese(server):
    ctx = server.app[CTX]
    marta = await staff(ctx.db, Role.MANAGER)
    _, appointment = await _patient_with_appointment(ctx, utcnow())
    base = f"/api/appointments/{appointment.id}"

    async with Staff(server, marta) as http:
        async with http.post(f"{base}/attended") as response:
            assert response.status == 409  # it has not happened yet
        async with http.post(f"{base}/cancel", json={"reason": "médico em congresso"}) as response:
            assert response.status == 200
            assert (await response.json())["status"] == "cancelada"
        async with http.post(f"{base}/confirm") as response:
            assert response.status == 409
            assert "não pode mais ser alterada" in (await response.json())["error"]
        async with http.post("/api/appointments/999999/confirm") as response:
            assert response.status == 404

    async with ctx.db.session() as session:
        notes = (
            (
                await session.execute(
                    select(AppointmentEvent.note).where(AppointmentEvent.to_status == "cancelada")
                )
            )
            .scalars()
            .all()
        )
    assert notes == ["médico em congresso"]


async def test_enviar_lembrete_sends_the_reminder_into_the_patients_conversation(server, daytime):
    ctx = server.app[CTX]
    marta = await staff(ctx.db, Role.MANAGER)
    recorded, appointment = await _patient_with_appointment(ctx, daytime)

    async with (
        Staff(server, marta) as http,
        http.post(f"/api/appointments/{appointment.id}/remind") as response,
    ):
        assert response.status == 201
        sent = (await response.json())["message"]

    assert sent["conversation_id"] == recorded.conversation.id
    assert [b["title"] for b in sent["buttons"]] == ["Confirmar", "Remarcar", "Cancelar"]
    assert ctx.senders["webchat"].texts == [sent["text"]]
    async with ctx.db.session() as session:
        reminder = (await session.execute(select(Reminder))).scalar_one()
    assert (reminder.requested_by_id, str(reminder.status)) == (marta.id, "sent")


async def test_enviar_lembrete_at_night_is_refused_with_the_reason(server, monkeypatch):
    ctx = server.app[CTX]
    marta = await staff(ctx.db, Role.MANAGER)
    night = sp(2030, 3, 12, 22)
    monkeypatch.setattr(reminders, "utcnow", lambda: night)
    _, appointment = await _patient_with_appointment(ctx, night)

    async with (
        Staff(server, marta) as http,
        http.post(f"/api/appointments/{appointment.id}/remind") as response,
    ):
        assert response.status == 409
        assert (await response.json())["error"] == "Lembretes só são enviados entre 8h e 21h."
    assert ctx.senders["webchat"].texts == []
