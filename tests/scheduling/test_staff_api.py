"""The staff agenda and appointment endpoints over real HTTP, on both databases: who may see
and do what, audit of reads, and the agenda's refusals in Portuguese."""

from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from handoff.transitions import queueing
from models import Appointment, AppointmentEvent, AttendantAction, Reminder, Role, utcnow
from processes.web import create_app
from scheduling import appointments, reminders
from scheduling.agenda import CLINIC_TZ, find_slots, nearest_slots, to_local
from scheduling.when import PARTS, TimeWindow
from tests.factories import (
    audit_entries,
    clinic_rules,
    patient_message,
    second_factor_optional,
    staff,
)
from tests.fakes import RecordingBot, RecordingSender
from tests.scheduling.conftest import sp
from web.keys import CTX

PASSWORD = "senha-segura"


@pytest.fixture
async def server(settings, agenda) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(settings))
    await server.start_server()
    await second_factor_optional(server.app[CTX].db)
    server.app[CTX].senders = {"webchat": RecordingSender()}
    server.app[CTX].bot = RecordingBot()
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
    appointment = await appointments.book(
        ctx.db,
        clinic_rules(),
        patient_id=recorded.message.patient_id,
        doctor_id=slot.doctor_id,
        starts_at=slot.starts_at,
        channel="webchat",
        self_service=False,
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
    await appointments.confirm(ctx.db, appointment.id, channel="webchat")
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
    assert [e.action for e in await audit_entries(ctx.db)] == ["read_agenda"]


async def test_an_attendant_acts_only_on_patients_of_conversations_assigned_to_them(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, capacity=1)
    recorded, appointment = await _patient_with_appointment(ctx, utcnow())
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="agendamento")
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
    reads = await audit_entries(ctx.db)
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


async def _with_attendant(ctx, name="Maria Souza"):
    """A widget patient whose conversation went to Ana (the only one online), and Bruno,
    who joined afterwards."""
    ana = await staff(ctx.db, capacity=1)
    recorded = await patient_message(ctx.db, "quero marcar consulta", display_name=name)
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="agendamento")
    bruno = await staff(ctx.db)
    return recorded, ana, bruno


async def _first_free(ctx, **criteria):
    async with ctx.db.session() as session:
        [slot] = await find_slots(session, now=utcnow() + timedelta(days=1), limit=1, **criteria)
    return slot


async def test_an_attendant_books_for_the_patient_from_the_slot_search(server, agenda):
    ctx = server.app[CTX]
    recorded, ana, _ = await _with_attendant(ctx)
    conversation_id, patient_id = recorded.conversation.id, recorded.message.patient_id
    cardio = agenda.specialties["cardiologia"]
    # A Wednesday at least a week ahead: the cardiologist works its afternoon.
    ahead = to_local(utcnow() + timedelta(days=7)).date()
    day = (ahead + timedelta(days=(2 - ahead.weekday()) % 7)).isoformat()
    # The bot's search for "quarta à tarde": that afternoon's slots, or the next ones.
    async with ctx.db.session() as session:
        expected, in_window = await nearest_slots(
            session, now=utcnow(), window=_afternoon(day), specialty_id=cardio.id, limit=8
        )

    async with Staff(server, ana) as http:
        async with http.get("/api/agenda/doctors") as response:
            doctors = await response.json()
        query = {"specialty_id": cardio.id, "day": day, "period": "tarde"}
        async with http.get("/api/slots", params=query) as response:
            assert response.status == 200
            found = await response.json()
        picked = found["slots"][0]
        async with http.post(
            f"/api/conversations/{conversation_id}/actions",
            json={
                "kind": "appointment_booked",
                "doctor_id": picked["doctor_id"],
                "starts_at": picked["starts_at"],
            },
        ) as response:
            assert response.status == 201
            action = await response.json()
        async with http.get(f"/api/patients/{patient_id}/appointments") as response:
            [listed] = await response.json()
        async with http.get(f"/api/conversations/{conversation_id}") as response:
            timeline = (await response.json())["timeline"]

    cardiologists = {
        d["name"] for d in doctors if {"id": cardio.id, "name": "Cardiologia"} in d["specialties"]
    }
    assert cardiologists == {"Dr. Ricardo Alves"}
    assert [s["starts_at"] for s in found["slots"]] == [s.starts_at.isoformat() for s in expected]
    assert found["in_window"] == in_window
    assert (listed["starts_at"], listed["doctor_name"], listed["status"]) == (
        picked["starts_at"],
        "Dr. Ricardo Alves",
        "agendada",
    )
    assert action["details"]["appointment_id"] == listed["id"]
    [done] = [e for e in timeline if e["entry"] == "action"]
    assert (done["kind"], done["actor_id"]) == ("appointment_booked", ana.id)
    async with ctx.db.session() as session:
        event = (await session.execute(select(AppointmentEvent))).scalar_one()
    assert (event.actor_id, event.channel, event.to_status) == (ana.id, "staff", "agendada")


def _afternoon(day: str) -> TimeWindow:
    start, end = PARTS["tarde"]
    moment = date.fromisoformat(day)
    return TimeWindow(
        datetime.combine(moment, start, CLINIC_TZ), datetime.combine(moment, end, CLINIC_TZ)
    )


async def test_an_attendant_cannot_book_for_a_colleagues_patient(server):
    ctx = server.app[CTX]
    recorded, _, bruno = await _with_attendant(ctx)
    slot = await _first_free(ctx)

    async with (
        Staff(server, bruno) as http,
        http.post(
            f"/api/conversations/{recorded.conversation.id}/actions",
            json={
                "kind": "appointment_booked",
                "doctor_id": slot.doctor_id,
                "starts_at": slot.starts_at.isoformat(),
            },
        ) as response,
    ):
        assert response.status == 403

    async with ctx.db.session() as session:
        assert (await session.execute(select(Appointment))).first() is None


async def test_a_slot_taken_meanwhile_is_refused_and_nothing_is_recorded(server):
    ctx = server.app[CTX]
    recorded, ana, _ = await _with_attendant(ctx)
    slot = await _first_free(ctx)
    other = await patient_message(ctx.db, "oi", display_name="Outra Pessoa")
    await appointments.book(
        ctx.db,
        clinic_rules(),
        patient_id=other.message.patient_id,
        doctor_id=slot.doctor_id,
        starts_at=slot.starts_at,
        channel="webchat",
        self_service=False,
    )
    path = f"/api/conversations/{recorded.conversation.id}/actions"

    async with Staff(server, ana) as http:
        async with http.post(
            path,
            json={
                "kind": "appointment_booked",
                "doctor_id": slot.doctor_id,
                "starts_at": slot.starts_at.isoformat(),
            },
        ) as response:
            assert response.status == 409
            assert (await response.json())["error"] == (
                "Esse horário acabou de ser ocupado. Escolha outro."
            )
        async with http.post(
            path, json={"kind": "appointment_booked", "doctor_id": slot.doctor_id}
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"] == (
                "Escolha um dos horários livres da busca para agendar."
            )

    async with ctx.db.session() as session:
        assert (await session.execute(select(AttendantAction))).first() is None
        booked = (await session.execute(select(Appointment.patient_id))).scalars().all()
    assert booked == [other.message.patient_id]


async def test_an_attendant_reschedules_and_the_new_appointment_is_linked(server):
    ctx = server.app[CTX]
    recorded, ana, _ = await _with_attendant(ctx)
    old = await appointments.book(
        ctx.db,
        clinic_rules(),
        patient_id=recorded.message.patient_id,
        doctor_id=(slot := await _first_free(ctx)).doctor_id,
        starts_at=slot.starts_at,
        channel="webchat",
        self_service=False,
    )
    async with ctx.db.session() as session:
        later = (
            await find_slots(
                session, now=slot.starts_at + timedelta(days=2), doctor_id=old.doctor_id
            )
        )[0]

    async with (
        Staff(server, ana) as http,
        http.post(
            f"/api/conversations/{recorded.conversation.id}/actions",
            json={
                "kind": "appointment_rescheduled",
                "appointment_id": old.id,
                "doctor_id": later.doctor_id,
                "starts_at": later.starts_at.isoformat(),
            },
        ) as response,
    ):
        assert response.status == 201
        details = (await response.json())["details"]

    async with ctx.db.session() as session:
        rows = (await session.execute(select(Appointment).order_by(Appointment.id))).scalars()
        moved = [(a.status, a.starts_at, a.rescheduled_from_id) for a in rows]
        by = (
            (
                await session.execute(
                    select(AppointmentEvent.actor_id).where(AppointmentEvent.actor_id.is_not(None))
                )
            )
            .scalars()
            .all()
        )
    assert moved == [
        ("cancelada", old.starts_at, None),
        ("agendada", later.starts_at, old.id),
    ]
    assert details["new_appointment_id"] != old.id and details["appointment_id"] == old.id
    assert by == [ana.id, ana.id]


async def test_slot_search_refuses_what_it_cannot_read(server):
    ctx = server.app[CTX]
    attendant = await staff(ctx.db)
    async with Staff(server, attendant) as http:
        for params, name in (
            ({}, "specialty_id/doctor_id"),
            ({"doctor_id": "1", "period": "madrugada"}, "period"),
            ({"doctor_id": "1", "day": "amanhã"}, "day"),
        ):
            async with http.get("/api/slots", params=params) as response:
                assert response.status == 400
                assert (await response.json())["error"] == f"Parâmetro inválido: {name}."


async def test_a_manager_blocks_a_doctors_time_and_is_told_of_the_appointments_inside(server):
    ctx = server.app[CTX]
    marta = await staff(ctx.db, Role.MANAGER)
    attendant = await staff(ctx.db)
    _, appointment = await _patient_with_appointment(ctx, utcnow())
    doctor_id = appointment.doctor_id
    day = to_local(appointment.starts_at).date()
    block = {
        "doctor_id": doctor_id,
        "starts_at": f"{day.isoformat()}T00:00",  # clinic-local, as the page sends it
        "ends_at": f"{(day + timedelta(days=1)).isoformat()}T00:00",
        "reason": "congresso",
    }

    async def offered() -> list[datetime]:
        async with ctx.db.session() as session:
            found = await find_slots(
                session, now=utcnow(), doctor_id=doctor_id, window=TimeWindow(*_local_day(day))
            )
        return [s.starts_at for s in found]

    assert await offered()
    async with (
        Staff(server, attendant) as http,
        http.post("/api/agenda/exceptions", json=block) as response,
    ):
        assert response.status == 403
    async with Staff(server, marta) as http:
        async with http.post(
            "/api/agenda/exceptions", json={**block, "ends_at": block["starts_at"]}
        ) as response:
            assert response.status == 400
            assert "o fim deve vir depois do início" in (await response.json())["error"]
        async with http.post("/api/agenda/exceptions", json={**block, "reason": " "}) as response:
            assert response.status == 400
        async with http.post("/api/agenda/exceptions", json=block) as response:
            assert response.status == 201
            blocked = await response.json()
        blocked_offer = await offered()
        async with http.get("/api/agenda", params={"day": day.isoformat()}) as response:
            column = next(
                d for d in (await response.json())["doctors"] if d["doctor"]["id"] == doctor_id
            )
        async with http.delete(f"/api/agenda/exceptions/{blocked['block']['id']}") as response:
            assert response.status == 200
        async with http.delete(f"/api/agenda/exceptions/{blocked['block']['id']}") as response:
            assert response.status == 404

    [inside] = blocked["appointments"]
    assert (inside["id"], inside["patient_name"], inside["status"]) == (
        appointment.id,
        "Maria Souza",
        "agendada",
    )
    assert blocked["block"]["starts_at"] == datetime.combine(day, time(0), CLINIC_TZ).isoformat()
    assert blocked_offer == [] and column["free"] == []
    assert [b["reason"] for b in column["blocked"]] == ["congresso"]
    assert [a["status"] for a in column["appointments"]] == ["agendada"]  # not cancelled
    assert await offered()  # offered again once the block is removed
    audited = [e.action for e in await audit_entries(ctx.db)]
    assert audited.count("block_time") == 1 and audited.count("unblock_time") == 1


async def test_only_a_manager_has_a_blocks_patients_told_and_each_once(server):
    ctx = server.app[CTX]
    marta = await staff(ctx.db, Role.MANAGER)
    attendant = await staff(ctx.db)
    _, appointment = await _patient_with_appointment(ctx, utcnow())
    blocked = await appointments.block_time(
        ctx.db,
        doctor_id=appointment.doctor_id,
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        reason="congresso",
    )
    path = f"/api/agenda/exceptions/{blocked.exception.id}/notify"

    async with Staff(server, attendant) as http, http.post(path) as response:
        assert response.status == 403
    async with Staff(server, marta) as http:
        async with http.post("/api/agenda/exceptions/999999/notify") as response:
            assert response.status == 404
        for _ in range(2):
            async with http.post(path) as response:
                assert response.status == 200
                told = await response.json()

    [inside] = told["appointments"]
    assert inside["id"] == appointment.id
    assert [(r["kind"], r["status"]) for r in inside["reminders"] if r["kind"] != "reminder"] == [
        ("blocked", "pending")
    ]
    audited = [e.action for e in await audit_entries(ctx.db)]
    assert audited.count("notify_blocked") == 2


def _local_day(day: date) -> tuple[datetime, datetime]:
    return datetime.combine(day, time(0), CLINIC_TZ), datetime.combine(day, time(23, 59), CLINIC_TZ)
