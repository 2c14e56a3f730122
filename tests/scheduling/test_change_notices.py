"""Patients are told of the changes staff make to their appointments (a cancellation, a new
time, a doctor's blocked time), once, on their channel, in their conversation; what they do
themselves is not notified."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import (
    AuthorKind,
    Conversation,
    Message,
    Reminder,
    ReminderKind,
    ReminderStatus,
    Role,
)
from scheduling import appointments
from scheduling.agenda import find_slots
from scheduling.reminders import LEASE, dispatch_due, end_of_quiet, reached_nowhere
from tests.factories import clinic_rules, staff
from tests.scheduling.conftest import make_patient, sp
from tests.scheduling.test_reminders import (
    NOW,
    STARTS,
    FakeProvider,
    WorkerKilled,
    _booked,
    at,
)

SOON = NOW + timedelta(minutes=1)
DOCTOR = "Dr. Paulo Mendes"


@pytest.fixture
def providers(ctx):
    ctx.senders = {"whatsapp": FakeProvider(), "email": FakeProvider()}
    return ctx.senders


async def _notices(ctx, appointment_id):
    async with ctx.db.session() as session:
        query = (
            select(Reminder)
            .where(Reminder.appointment_id == appointment_id, Reminder.kind != "reminder")
            .order_by(Reminder.id)
        )
        return (await session.execute(query)).scalars().all()


async def _patient_messages(ctx, patient_id):
    async with ctx.db.session() as session:
        query = (
            select(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.patient_id == patient_id)
            .order_by(Message.id)
        )
        return (await session.execute(query)).scalars().all()


async def test_a_cancellation_by_staff_tells_the_patient_once_with_the_doctor_and_time(
    ctx, agenda, providers
):
    desk = await staff(ctx.db)
    patient = await make_patient(ctx.db, "Joana Lima")
    appointment = await _booked(ctx, agenda, patient)

    await appointments.cancel(
        ctx.db, appointment.id, channel="staff", actor_id=desk.id, notify_patient=True, now=NOW
    )
    await dispatch_due(ctx, clock=at(SOON))
    await dispatch_due(ctx, clock=at(SOON + LEASE * 2))

    [sent] = providers["whatsapp"].requests
    assert sent.text == (
        "Olá, Joana! Aviso da Clínica Vida Plena: sua consulta de quinta-feira, 12/03, às "
        f"14:00, com {DOCTOR}, foi cancelada pela clínica. Se quiser marcar um novo horário, "
        "é só responder a esta mensagem."
    )
    assert sent.buttons == []
    assert sent.template == {
        "name": "consulta_cancelada",
        "language": "pt_BR",
        "purpose": "appointment_cancelled",
        "parameters": ["Joana", "Clínica Vida Plena", "12/03/2026", "14:00", DOCTOR],
    }
    [notice] = await _notices(ctx, appointment.id)
    told = (notice.kind, notice.status, notice.channel, notice.message_id, notice.requested_by_id)
    assert told == (
        ReminderKind.CANCELLED,
        ReminderStatus.SENT,
        "whatsapp",
        sent.id,
        desk.id,
    )
    # In the patient's history like any message the clinic sent.
    [recorded] = await _patient_messages(ctx, patient.id)
    assert (recorded.id, recorded.author_kind) == (sent.id, AuthorKind.BOT)


async def test_a_patient_cancelling_on_their_own_is_not_notified(ctx, agenda, providers):
    patient = await make_patient(ctx.db)
    appointment = await _booked(ctx, agenda, patient)

    await appointments.cancel(ctx.db, appointment.id, channel="whatsapp", now=NOW)
    await dispatch_due(ctx, clock=at(SOON))

    assert providers["whatsapp"].requests == []
    assert await _notices(ctx, appointment.id) == []


async def test_a_move_by_staff_tells_the_new_time_with_buttons_for_the_new_appointment(
    ctx, agenda, providers
):
    desk = await staff(ctx.db)
    patient = await make_patient(ctx.db, "Joana Lima")
    appointment = await _booked(ctx, agenda, patient)
    async with ctx.db.session() as session:
        [slot] = await find_slots(
            session, now=sp(2026, 3, 13), doctor_id=appointment.doctor_id, limit=1
        )
    later = slot.starts_at

    moved = await appointments.reschedule(
        ctx.db,
        clinic_rules(),
        appointment.id,
        starts_at=later,
        channel="staff",
        self_service=False,
        actor_id=desk.id,
        notify_patient=True,
        now=NOW,
    )
    await dispatch_due(ctx, clock=at(SOON))

    [sent] = providers["whatsapp"].requests
    assert sent.text == (
        f"Olá, Joana! Aviso da Clínica Vida Plena: sua consulta com {DOCTOR} foi remarcada "
        "pela clínica de quinta-feira, 12/03, às 14:00 para sexta-feira, 13/03, às 13:00. "
        "Você confirma sua presença no novo horário?"
    )
    assert [b["title"] for b in sent.buttons] == ["Confirmar", "Remarcar", "Cancelar"]
    assert f'"appointment_id":"{moved.id}"' in sent.buttons[0]["payload"]
    assert sent.template["name"] == "consulta_remarcada"
    assert sent.template["parameters"] == [
        "Joana",
        "Clínica Vida Plena",
        "12/03/2026",
        "14:00",
        "13/03/2026",
        "13:00",
        DOCTOR,
    ]
    assert [n.kind for n in await _notices(ctx, moved.id)] == [ReminderKind.RESCHEDULED]


async def test_a_move_told_by_email_carries_the_new_times_calendar_file(ctx, agenda, providers):
    desk = await staff(ctx.db)
    patient = await make_patient(ctx.db, channels=("email",))
    appointment = await _booked(ctx, agenda, patient)
    async with ctx.db.session() as session:
        [slot] = await find_slots(
            session, now=sp(2026, 3, 13), doctor_id=appointment.doctor_id, limit=1
        )

    moved = await appointments.reschedule(
        ctx.db,
        clinic_rules(),
        appointment.id,
        starts_at=slot.starts_at,
        channel="staff",
        self_service=False,
        actor_id=desk.id,
        notify_patient=True,
        now=NOW,
    )
    await dispatch_due(ctx, clock=at(SOON))

    [mail] = providers["email"].requests
    [ics] = mail.attachments
    assert ics["filename"] == "consulta.ics"
    assert f"UID:consulta-{moved.id}@omniclinica" in ics["content"]
    assert "DTSTART:20260313T160000Z" in ics["content"]  # 13h in São Paulo


async def _three_booked_inside(ctx, agenda):
    doctor = agenda.doctor("Paulo")
    async with ctx.db.session() as session:
        slots = await find_slots(session, now=STARTS - timedelta(minutes=1), doctor_id=doctor.id)
    booked = []
    for n, slot in enumerate(slots[:3]):
        patient = await make_patient(ctx.db, f"Paciente {n}")
        booked.append(await _booked(ctx, agenda, patient, starts_at=slot.starts_at))
    blocked = await appointments.block_time(
        ctx.db,
        doctor_id=doctor.id,
        starts_at=sp(2026, 3, 12, 0),
        ends_at=sp(2026, 3, 13, 0),
        reason="congresso",
        now=NOW,
    )
    assert sorted(a.id for a in blocked.appointments) == sorted(a.id for a in booked)
    return booked, blocked.exception.id


async def test_avisar_e_remarcar_tells_each_patient_in_the_block_once_even_after_a_crash(
    ctx, agenda, providers
):
    manager = await staff(ctx.db, Role.MANAGER)
    booked, block_id = await _three_booked_inside(ctx, agenda)
    # The provider deduplicates on our message id; the first send kills its worker after
    # the provider took it.
    whatsapp = providers["whatsapp"]
    whatsapp.idempotent = True
    whatsapp.die_after_request = True

    await appointments.notify_blocked(ctx.db, block_id, actor_id=manager.id, now=NOW)
    await appointments.notify_blocked(ctx.db, block_id, actor_id=manager.id, now=NOW)  # twice
    with pytest.raises(WorkerKilled):
        await dispatch_due(ctx, worker_id="worker-a", clock=at(SOON), batch=1)
    await dispatch_due(ctx, worker_id="worker-b", clock=at(SOON + LEASE * 2))
    await appointments.notify_blocked(ctx.db, block_id, actor_id=manager.id, now=NOW)
    await dispatch_due(ctx, worker_id="worker-b", clock=at(SOON + LEASE * 4))

    delivered = whatsapp.delivered
    assert len(delivered) == 3
    assert sorted(m.patient_id for m in delivered) == sorted(a.patient_id for a in booked)
    for message in delivered:
        assert "precisa ser remarcada, pois o profissional não poderá atender" in message.text
        assert [b["title"] for b in message.buttons] == ["Remarcar", "Cancelar"]
        assert message.template["name"] == "consulta_a_remarcar"
    for appointment in booked:
        [notice] = await _notices(ctx, appointment.id)
        assert (notice.kind, notice.status) == (ReminderKind.BLOCKED, ReminderStatus.SENT)
    # The appointments stay as they were, for the patient or the desk to move.
    async with ctx.db.session() as session:
        for appointment in booked:
            assert (await session.get(type(appointment), appointment.id)).status == "agendada"


async def test_a_patient_no_channel_reaches_is_left_for_the_desk_to_phone(ctx, agenda, providers):
    manager = await staff(ctx.db, Role.MANAGER)
    patient = await make_patient(ctx.db, channels=())
    appointment = await _booked(ctx, agenda, patient)
    blocked = await appointments.block_time(
        ctx.db,
        doctor_id=appointment.doctor_id,
        starts_at=STARTS,
        ends_at=STARTS + timedelta(hours=1),
        reason="reunião",
        now=NOW,
    )

    await appointments.notify_blocked(ctx.db, blocked.exception.id, actor_id=manager.id, now=NOW)
    await dispatch_due(ctx, clock=at(SOON))

    [notice] = await _notices(ctx, appointment.id)
    assert (notice.status, notice.error) == (ReminderStatus.FAILED, "no_channel")
    async with ctx.db.session() as session:
        current = await session.get(type(appointment), appointment.id)
    assert reached_nowhere(current, [notice])


async def test_a_patient_who_turned_reminders_off_is_still_told_of_a_cancellation(
    ctx, agenda, providers
):
    desk = await staff(ctx.db)
    patient = await make_patient(ctx.db, opt_in=False)
    appointment = await _booked(ctx, agenda, patient)

    await appointments.cancel(
        ctx.db, appointment.id, channel="staff", actor_id=desk.id, notify_patient=True, now=NOW
    )
    await dispatch_due(ctx, clock=at(SOON))

    assert len(providers["whatsapp"].requests) == 1


async def test_a_change_the_morning_would_tell_too_late_goes_out_at_night(ctx, agenda, providers):
    desk = await staff(ctx.db)
    early = await make_patient(ctx.db, "Cedo")
    later = await make_patient(ctx.db, "Tarde")
    async with ctx.db.session() as session:
        # Dra. Ana's Thursday morning: 8h, when the quiet hours end, to 11h30.
        first, *_, last = await find_slots(
            session, now=sp(2026, 3, 12), doctor_id=agenda.doctor("Ana").id, limit=8
        )
    night = sp(2026, 3, 11, 22)
    tight = await _booked(ctx, agenda, early, starts_at=first.starts_at, doctor="Ana")
    roomy = await _booked(ctx, agenda, later, starts_at=last.starts_at, doctor="Ana")
    for appointment in (tight, roomy):
        await appointments.cancel(
            ctx.db,
            appointment.id,
            channel="staff",
            actor_id=desk.id,
            notify_patient=True,
            now=night,
        )

    await dispatch_due(ctx, clock=at(night + timedelta(minutes=1)))

    [sent] = providers["whatsapp"].requests
    assert sent.patient_id == early.id
    [held] = await _notices(ctx, roomy.id)
    assert (held.status, held.due_at) == (ReminderStatus.PENDING, end_of_quiet(night))
