"""Patients told of the changes staff make, over the real processes: a manager cancels,
reschedules or blocks a day in the running clinic, and the worker from the Procfile tells each
patient on WhatsApp (an approved template, their 24 h window being closed) through the fake
Graph API, once."""

import asyncio
import itertools
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from messaging.history import open_conversation
from models import (
    Appointment,
    ChannelIdentity,
    PatientProfile,
    Reminder,
    ReminderKind,
    ReminderStatus,
    Role,
    User,
    utcnow,
)
from models.db import Database
from scheduling import appointments
from scheduling.agenda import find_slots, to_local
from scheduling.reminders import end_of_quiet, is_quiet
from tests.clients import StaffClient
from tests.clinic import STAFF_PASSWORD, WORKER_TICKS, soon
from tests.factories import clinic_rules

pytestmark = pytest.mark.integration

# WhatsApp numbers no other test of the session uses.
_numbers = itertools.count(int(time.time()) % 10_000_000)


def _template_to(number: str, name: str):
    def matches(request) -> bool:
        if not request.path.endswith("/messages") or request.recipient != number:
            return False
        return request.json.get("template", {}).get("name") == name

    return matches


def _parameters(request) -> list[str]:
    [body] = [c for c in request.json["template"]["components"] if c["type"] == "body"]
    return [p["text"] for p in body["parameters"]]


async def _whatsapp_patient(db: Database, name: str) -> tuple[User, str, int]:
    """A patient who last wrote on WhatsApp two days ago: its window is closed."""
    number = f"55119{next(_numbers):08d}"
    async with db.session() as session:
        patient = User(role=Role.PATIENT, name=name)
        patient.patient_profile = PatientProfile(preferred_channel="whatsapp")
        session.add(patient)
        await session.flush()
        identity = ChannelIdentity(
            channel="whatsapp",
            external_id=number,
            patient_id=patient.id,
            last_inbound_at=utcnow() - timedelta(days=2),
        )
        session.add(identity)
        await session.flush()
        conversation = await open_conversation(session, identity)
    return patient, number, conversation.id


async def _book(db: Database, patient: User, slot) -> Appointment:
    return await appointments.book(
        db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=slot.doctor_id,
        starts_at=slot.starts_at,
        channel="telefone",
        self_service=False,
    )


async def _notice(db: Database, appointment_id: int) -> Reminder:
    async with db.session() as session:
        query = select(Reminder).where(
            Reminder.appointment_id == appointment_id, Reminder.kind != ReminderKind.REMINDER
        )
        return (await session.execute(query)).scalar_one()


@pytest.fixture
async def marta(clinic):
    client = StaffClient(clinic.settings.web_url)
    await client.login(clinic.login_for("marta@").email, STAFF_PASSWORD)
    yield client
    await client.close()


async def _held_for_the_morning(db: Database, appointment_id: int) -> bool:
    """Night in São Paulo: the worker holds notices until 8h, and the patient gets nothing."""
    now = utcnow()
    if not is_quiet(now):
        return False
    held = await soon(
        lambda: _notice(db, appointment_id), lambda n: n.due_at > n.created_at + timedelta(hours=1)
    )
    assert (held.status, held.due_at) == (ReminderStatus.PENDING, end_of_quiet(now))
    return True


async def test_a_cancellation_at_the_desk_reaches_the_patient_as_a_whatsapp_template(
    clinic, live_db, provider, marta
):
    patient, number, _ = await _whatsapp_patient(live_db, "Rita Alves")
    async with live_db.session() as session:
        [slot] = await find_slots(session, now=utcnow() + timedelta(days=5), limit=1)
    appointment = await _book(live_db, patient, slot)

    status, _ = await marta.request(
        "POST", f"/api/appointments/{appointment.id}/cancel", {"reason": "médico em cirurgia"}
    )
    assert status == 200
    if await _held_for_the_morning(live_db, appointment.id):
        return

    [sent] = await provider.wait_for(
        _template_to(number, "consulta_cancelada"), timeout=WORKER_TICKS * 2
    )
    local = to_local(slot.starts_at)
    assert _parameters(sent) == [
        "Rita",
        "Clínica Vida Plena",
        local.strftime("%d/%m/%Y"),
        local.strftime("%H:%M"),
        slot.doctor_name,
    ]
    notice = await soon(
        lambda: _notice(live_db, appointment.id), lambda n: n.status == ReminderStatus.SENT
    )
    assert notice.channel == "whatsapp"


async def test_a_move_from_the_workspace_tells_the_patient_the_new_time(
    clinic, live_db, provider, marta
):
    patient, number, conversation_id = await _whatsapp_patient(live_db, "Otávio Reis")
    async with live_db.session() as session:
        first, *_, later = await find_slots(session, now=utcnow() + timedelta(days=6), limit=4)
    appointment = await _book(live_db, patient, first)

    status, body = await marta.request(
        "POST",
        f"/api/conversations/{conversation_id}/actions",
        {
            "kind": "appointment_rescheduled",
            "appointment_id": appointment.id,
            "doctor_id": later.doctor_id,
            "starts_at": later.starts_at.isoformat(),
        },
    )
    assert status == 201, body
    moved_id = body["details"]["new_appointment_id"]
    if await _held_for_the_morning(live_db, moved_id):
        return

    [sent] = await provider.wait_for(
        _template_to(number, "consulta_remarcada"), timeout=WORKER_TICKS * 2
    )
    old, new = to_local(first.starts_at), to_local(later.starts_at)
    assert _parameters(sent) == [
        "Otávio",
        "Clínica Vida Plena",
        old.strftime("%d/%m/%Y"),
        old.strftime("%H:%M"),
        new.strftime("%d/%m/%Y"),
        new.strftime("%H:%M"),
        later.doctor_name,
    ]


async def test_a_blocked_day_tells_each_booked_patient_once(clinic, live_db, provider, marta):
    async with live_db.session() as session:
        [first] = await find_slots(session, now=utcnow() + timedelta(days=40), limit=1)
        day_slots = await find_slots(
            session, now=first.starts_at - timedelta(minutes=1), doctor_id=first.doctor_id
        )
    booked = {}
    for n, slot in enumerate(day_slots[:3]):
        patient, number, _ = await _whatsapp_patient(live_db, f"Paciente Bloqueio {n}")
        booked[number] = await _book(live_db, patient, slot)
    day = to_local(first.starts_at).date()

    status, blocked = await marta.request(
        "POST",
        "/api/agenda/exceptions",
        {
            "doctor_id": first.doctor_id,
            "starts_at": f"{day.isoformat()}T00:00",
            "ends_at": f"{(day + timedelta(days=1)).isoformat()}T00:00",
            "reason": "congresso",
        },
    )
    assert status == 201
    path = f"/api/agenda/exceptions/{blocked['block']['id']}/notify"
    status, told = await marta.request("POST", path)
    assert status == 200
    assert sorted(a["id"] for a in told["appointments"]) == sorted(a.id for a in booked.values())
    status, _ = await marta.request("POST", path)  # a second click tells nobody again
    assert status == 200
    if await _held_for_the_morning(live_db, next(iter(booked.values())).id):
        return

    for number in booked:
        await provider.wait_for(
            _template_to(number, "consulta_a_remarcar"), timeout=WORKER_TICKS * 2
        )
    await asyncio.sleep(WORKER_TICKS)  # a few more runs of the worker send nothing more
    for number in booked:
        assert len(provider.sent(_template_to(number, "consulta_a_remarcar"))) == 1
