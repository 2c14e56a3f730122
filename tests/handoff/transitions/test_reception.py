"""The reception's typed actions and their effect on the patient's appointments
(handoff.transitions.reception)."""

import pytest
from sqlalchemy import select

from handoff.transitions import reception
from models import Appointment, AppointmentStatus, AttendantAction
from tests.factories import patient_message, staff
from tests.handoff.steps import appointment_for, handed_off, read_conversation


async def test_reception_actions_are_recorded_typed_in_the_timeline(ctx):
    ana = await staff(ctx.db)
    conversation_id = await handed_off(ctx)

    await reception.record_action(
        ctx, conversation_id, ana, "exams_delivered", {"note": "Hemograma"}
    )

    async with ctx.db.session() as session:
        recorded = (await session.execute(select(AttendantAction))).scalars().all()
    assert [(a.kind, a.actor_id, a.details) for a in recorded] == [
        ("exams_delivered", ana.id, {"note": "Hemograma"})
    ]
    assert ctx.bus.of_type("action")[0]["action"]["kind"] == "exams_delivered"
    with pytest.raises(reception.UnknownAction):
        await reception.record_action(ctx, conversation_id, ana, "drop_table")


async def test_confirmar_consulta_confirms_the_patients_appointment_and_records_it(ctx):
    ana = await staff(ctx.db)
    conversation_id = await handed_off(ctx)
    patient_id = (await read_conversation(ctx.db, conversation_id)).patient_id
    appointment_id = await appointment_for(ctx.db, patient_id)

    await reception.record_action(
        ctx, conversation_id, ana, "appointment_confirmed", {"appointment_id": appointment_id}
    )

    async with ctx.db.session() as session:
        appointment = await session.get(Appointment, appointment_id)
        recorded = (await session.execute(select(AttendantAction))).scalar_one()
    assert appointment.status == AppointmentStatus.CONFIRMED
    assert (recorded.kind, recorded.details) == (
        "appointment_confirmed",
        {"appointment_id": appointment_id, "status": "confirmada"},
    )


async def test_appointment_actions_stay_within_the_conversations_patient(ctx):
    ana = await staff(ctx.db)
    conversation_id = await handed_off(ctx)
    stranger = await patient_message(ctx.db, "oi")
    theirs = await appointment_for(ctx.db, stranger.conversation.patient_id)

    with pytest.raises(reception.NotThePatientsAppointment):
        await reception.record_action(
            ctx, conversation_id, ana, "appointment_cancelled", {"appointment_id": theirs}
        )
    with pytest.raises(reception.UnknownAction):
        await reception.record_action(ctx, conversation_id, ana, "appointment_confirmed")
    async with ctx.db.session() as session:
        assert (await session.get(Appointment, theirs)).status == AppointmentStatus.SCHEDULED
        assert (await session.execute(select(AttendantAction))).first() is None


async def test_a_change_the_agenda_refuses_is_explained_and_not_recorded(ctx):
    ana = await staff(ctx.db)
    conversation_id = await handed_off(ctx)
    patient_id = (await read_conversation(ctx.db, conversation_id)).patient_id
    upcoming = await appointment_for(ctx.db, patient_id)
    await reception.record_action(
        ctx, conversation_id, ana, "appointment_cancelled", {"appointment_id": upcoming}
    )

    with pytest.raises(reception.Refused) as refused:
        await reception.record_action(
            ctx, conversation_id, ana, "appointment_confirmed", {"appointment_id": upcoming}
        )
    assert refused.value.code == "agenda.error.invalid_transition"
    with pytest.raises(reception.Refused):  # attendance is marked once the time has come
        await reception.record_action(
            ctx, conversation_id, ana, "attended", {"appointment_id": upcoming}
        )
    async with ctx.db.session() as session:
        kinds = (await session.execute(select(AttendantAction.kind))).scalars().all()
    assert kinds == ["appointment_cancelled"]
