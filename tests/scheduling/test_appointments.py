"""Booking, cancelling, rescheduling, confirming and attendance: one domain function each,
every change recorded with who and through which channel."""

import asyncio

import pytest
from sqlalchemy import select

from models import Appointment, AppointmentEvent, AppointmentStatus, Reminder, ReminderStatus
from scheduling import appointments
from scheduling.appointments import InvalidTransition, SlotTaken, SlotUnavailable
from tests.factories import clinic_rules
from tests.scheduling.conftest import make_patient, sp

NOW = sp(2026, 3, 9, 10)
TUESDAY_8 = sp(2026, 3, 10, 8)


async def _events(db, appointment_id):
    async with db.session() as session:
        query = (
            select(AppointmentEvent)
            .where(AppointmentEvent.appointment_id == appointment_id)
            .order_by(AppointmentEvent.id)
        )
        return [
            (e.from_status, e.to_status, e.actor_id, e.channel)
            for e in (await session.execute(query)).scalars()
        ]


async def _book(db, agenda, patient, starts_at=TUESDAY_8, doctor="Ana", **kwargs):
    return await appointments.book(
        db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=agenda.doctor(doctor).id,
        starts_at=starts_at,
        channel=kwargs.pop("channel", "whatsapp"),
        now=kwargs.pop("now", NOW),
        self_service=kwargs.pop("self_service", False),
        **kwargs,
    )


async def test_booking_records_who_booked_and_through_which_channel(db, agenda):
    patient = await make_patient(db)

    appointment = await _book(db, agenda, patient)

    assert appointment.status == AppointmentStatus.SCHEDULED
    assert appointment.starts_at == TUESDAY_8
    assert (appointment.ends_at - appointment.starts_at).seconds == 30 * 60
    assert appointment.doctor.name == "Dra. Ana Carvalho"
    assert appointment.specialty.name == "Clínica Geral"
    assert await _events(db, appointment.id) == [(None, "agendada", None, "whatsapp")]


async def test_a_taken_slot_is_refused_to_another_patient(db, agenda):
    await _book(db, agenda, await make_patient(db, "Maria"))

    with pytest.raises(SlotTaken) as refused:
        await _book(db, agenda, await make_patient(db, "José"))

    assert type(refused.value) is SlotTaken


async def test_the_same_booking_arriving_twice_books_once(db, agenda):
    patient = await make_patient(db)

    first = await _book(db, agenda, patient)
    again = await _book(db, agenda, patient)

    assert again.id == first.id
    assert len(await _events(db, first.id)) == 1


@pytest.mark.parametrize(
    "starts_at",
    [
        pytest.param(sp(2026, 3, 10, 8, 10), id="off-the-grid"),
        pytest.param(sp(2026, 3, 10, 12), id="after-hours"),
        pytest.param(sp(2026, 4, 21, 8), id="holiday"),
        pytest.param(sp(2026, 3, 9, 8), id="past"),
        pytest.param(sp(2026, 3, 14, 8), id="saturday"),
    ],
)
async def test_times_that_are_not_slots_cannot_be_booked(db, agenda, starts_at):
    with pytest.raises(SlotUnavailable):
        await _book(db, agenda, await make_patient(db), starts_at=starts_at)


async def test_concurrent_requests_for_the_last_free_slot_book_it_exactly_once(db, agenda):
    patients = [await make_patient(db, f"Paciente {n}") for n in range(8)]

    results = await asyncio.gather(
        *(_book(db, agenda, p) for p in patients), return_exceptions=True
    )

    booked = [r for r in results if isinstance(r, Appointment)]
    refused = [r for r in results if isinstance(r, SlotTaken)]
    assert len(booked) == 1 and len(refused) == 7, results
    async with db.session() as session:
        rows = (await session.execute(select(Appointment))).scalars().all()
    assert len(rows) == 1


async def test_cancelling_frees_the_slot_and_cancels_unsent_reminders(db, agenda):
    patient = await make_patient(db)
    appointment = await _book(db, agenda, patient)
    async with db.session() as session:
        session.add(Reminder(appointment_id=appointment.id, offset_minutes=120, due_at=NOW))

    cancelled = await appointments.cancel(
        db, appointment.id, channel="staff", actor_id=None, reason="paciente viajou", now=NOW
    )
    again = await appointments.cancel(db, appointment.id, channel="whatsapp", now=NOW)
    other = await _book(db, agenda, await make_patient(db, "José"))

    assert cancelled.status == again.status == AppointmentStatus.CANCELLED
    assert other.starts_at == TUESDAY_8
    assert await _events(db, appointment.id) == [
        (None, "agendada", None, "whatsapp"),
        ("agendada", "cancelada", None, "staff"),
    ]
    async with db.session() as session:
        reminder = (await session.execute(select(Reminder))).scalar_one()
        event = (
            await session.execute(
                select(AppointmentEvent).where(AppointmentEvent.to_status == "cancelada")
            )
        ).scalar_one()
    assert reminder.status == ReminderStatus.CANCELLED
    assert event.note == "paciente viajou"


async def test_rescheduling_links_the_new_appointment_and_cancels_the_old(db, agenda):
    patient = await make_patient(db)
    old = await _book(db, agenda, patient)
    async with db.session() as session:
        session.add(Reminder(appointment_id=old.id, offset_minutes=120, due_at=NOW))

    new = await appointments.reschedule(
        db,
        clinic_rules(),
        old.id,
        starts_at=sp(2026, 3, 11, 14),
        doctor_id=agenda.doctor("Paulo").id,
        channel="webchat",
        now=NOW,
        self_service=False,
    )

    assert new.id != old.id
    assert new.rescheduled_from_id == old.id
    assert new.status == AppointmentStatus.SCHEDULED
    assert new.doctor.name == "Dr. Paulo Mendes"
    async with db.session() as session:
        stored_old = await session.get(Appointment, old.id)
        reminder = (await session.execute(select(Reminder))).scalar_one()
    assert stored_old.status == AppointmentStatus.CANCELLED
    assert reminder.status == ReminderStatus.CANCELLED
    assert await _events(db, new.id) == [(None, "agendada", None, "webchat")]


async def test_moving_within_the_same_slot_does_not_collide_with_itself(db, agenda):
    old = await _book(db, agenda, await make_patient(db))

    new = await appointments.reschedule(
        db,
        clinic_rules(),
        old.id,
        starts_at=TUESDAY_8,
        channel="staff",
        now=NOW,
        self_service=False,
    )

    assert new.starts_at == TUESDAY_8 and new.rescheduled_from_id == old.id


async def test_rescheduling_onto_a_taken_slot_leaves_the_old_appointment_untouched(db, agenda):
    old = await _book(db, agenda, await make_patient(db, "Maria"))
    await _book(db, agenda, await make_patient(db, "José"), starts_at=sp(2026, 3, 10, 9))

    with pytest.raises(SlotTaken):
        await appointments.reschedule(
            db,
            clinic_rules(),
            old.id,
            starts_at=sp(2026, 3, 10, 9),
            channel="whatsapp",
            now=NOW,
            self_service=False,
        )

    async with db.session() as session:
        stored = await session.get(Appointment, old.id)
    assert stored.status == AppointmentStatus.SCHEDULED
    assert len(await _events(db, old.id)) == 1


async def test_confirming_twice_records_one_confirmation(db, agenda):
    appointment = await _book(db, agenda, await make_patient(db))

    await appointments.confirm(db, appointment.id, channel="whatsapp", now=NOW)
    confirmed = await appointments.confirm(db, appointment.id, channel="whatsapp", now=NOW)

    assert confirmed.status == AppointmentStatus.CONFIRMED
    assert await _events(db, appointment.id) == [
        (None, "agendada", None, "whatsapp"),
        ("agendada", "confirmada", None, "whatsapp"),
    ]


async def test_a_cancelled_or_past_appointment_cannot_be_confirmed(db, agenda):
    cancelled = await _book(db, agenda, await make_patient(db))
    await appointments.cancel(db, cancelled.id, channel="whatsapp", now=NOW)
    past = await _book(db, agenda, await make_patient(db, "José"), starts_at=sp(2026, 3, 10, 9))

    with pytest.raises(InvalidTransition) as refused:
        await appointments.confirm(db, cancelled.id, channel="whatsapp", now=NOW)
    assert refused.value.current == AppointmentStatus.CANCELLED
    with pytest.raises(InvalidTransition):
        await appointments.confirm(db, past.id, channel="whatsapp", now=sp(2026, 3, 10, 9, 5))


async def test_attendance_is_recorded_only_once_the_time_has_come(db, agenda):
    staff_id = (await make_patient(db, "Recepção")).id
    appointment = await _book(db, agenda, await make_patient(db))

    with pytest.raises(InvalidTransition):
        await appointments.mark_attendance(
            db, appointment.id, attended=True, actor_id=staff_id, channel="staff", now=NOW
        )
    came = await appointments.mark_attendance(
        db,
        appointment.id,
        attended=True,
        actor_id=staff_id,
        channel="staff",
        now=sp(2026, 3, 10, 8, 40),
    )
    corrected = await appointments.mark_attendance(
        db,
        appointment.id,
        attended=False,
        actor_id=staff_id,
        channel="staff",
        now=sp(2026, 3, 10, 9),
    )

    assert came.status == AppointmentStatus.DONE
    assert corrected.status == AppointmentStatus.NO_SHOW
    assert (await _events(db, appointment.id))[1:] == [
        ("agendada", "realizada", staff_id, "staff"),
        ("realizada", "faltou", staff_id, "staff"),
    ]


async def test_unknown_appointments_are_reported_as_such(db, agenda):
    with pytest.raises(appointments.AppointmentNotFound):
        await appointments.confirm(db, 999, channel="whatsapp", now=NOW)


async def test_upcoming_appointments_leave_out_cancelled_and_past_ones(db, agenda):
    patient = await make_patient(db)
    later = await _book(db, agenda, patient, starts_at=sp(2026, 3, 12, 9))
    cancelled = await _book(db, agenda, patient, starts_at=sp(2026, 3, 13, 9))
    await appointments.cancel(db, cancelled.id, channel="whatsapp", now=NOW)
    soon = await _book(db, agenda, patient)

    async with db.session() as session:
        upcoming = await appointments.upcoming_for_patient(session, patient.id, now=NOW)
        after_first = await appointments.upcoming_for_patient(
            session, patient.id, now=sp(2026, 3, 10, 8, 1)
        )

    assert [a.id for a in upcoming] == [soon.id, later.id]
    assert [a.id for a in after_first] == [later.id]
    assert upcoming[0].doctor.name == "Dra. Ana Carvalho"
