"""How much of the agenda one patient may take: a cap of active future appointments per
specialty (staff may go beyond it, audited), a pace for the patient's own changes, and a
verified contact to book on their own."""

import pytest
from sqlalchemy import select

from core.ratelimit import LocalLimits
from models import AppointmentEvent, AuditLog, ChannelIdentity, User
from scheduling import appointments
from scheduling.appointments import BookingRules, CapReached, ContactNotVerified, TooManyChanges
from tests.factories import clinic_rules, staff
from tests.scheduling.conftest import make_patient, sp

NOW = sp(2026, 3, 9, 10)
# Dra. Ana Carvalho (Clínica Geral) works Tuesday mornings; Dr. Ricardo Alves (Cardiologia)
# on Wednesdays.
TUESDAY = (sp(2026, 3, 10, 8), sp(2026, 3, 10, 9), sp(2026, 3, 10, 10), sp(2026, 3, 10, 11))
WEDNESDAY_8 = sp(2026, 3, 11, 8)


async def _verified_patient(db, name="Maria da Silva"):
    patient = await make_patient(db, name, channels=())
    async with db.session() as session:
        session.add(
            ChannelIdentity(
                channel="whatsapp",
                external_id=f"55219{patient.id:08d}",
                patient_id=patient.id,
                verified_phone=f"+55219{patient.id:08d}",
            )
        )
    return patient


async def _book(db, agenda, patient, starts_at, *, rules=None, doctor="Ana", **kwargs):
    return await appointments.book(
        db,
        rules or clinic_rules(),
        patient_id=patient.id,
        doctor_id=agenda.doctor(doctor).id,
        starts_at=starts_at,
        channel=kwargs.pop("channel", "whatsapp"),
        self_service=kwargs.pop("self_service", True),
        now=NOW,
        **kwargs,
    )


async def test_a_patient_holds_at_most_the_cap_of_appointments_in_one_specialty(db, agenda):
    patient = await _verified_patient(db)
    await _book(db, agenda, patient, TUESDAY[0])
    await _book(db, agenda, patient, TUESDAY[1])

    with pytest.raises(CapReached) as refused:
        await _book(db, agenda, patient, TUESDAY[2])

    assert refused.value.values == {"especialidade": "Clínica Geral", "maximo": 2}
    # Another specialty has a cap of its own.
    await _book(db, agenda, patient, WEDNESDAY_8, doctor="Ricardo")


async def test_staff_are_held_to_the_cap_too_unless_they_book_over_it_and_that_is_audited(
    db, agenda
):
    patient = await make_patient(db)
    attendant = await staff(db)
    for moment in TUESDAY[:2]:
        await _book(db, agenda, patient, moment, self_service=False, actor_id=attendant.id)
    with pytest.raises(CapReached):
        await _book(db, agenda, patient, TUESDAY[2], self_service=False, actor_id=attendant.id)

    third = await _book(
        db, agenda, patient, TUESDAY[2], self_service=False, actor_id=attendant.id, over_cap=True
    )

    async with db.session() as session:
        [entry] = (
            await session.execute(select(AuditLog).where(AuditLog.action == "booked_over_cap"))
        ).scalars()
        event = (
            await session.execute(
                select(AppointmentEvent).where(AppointmentEvent.appointment_id == third.id)
            )
        ).scalar_one()
    assert (entry.actor_id, entry.patient_id) == (attendant.id, patient.id)
    assert entry.details["appointment_id"] == third.id
    assert event.actor_id == attendant.id and "acima do limite" in event.note


async def test_cancelled_and_past_appointments_do_not_count_and_a_move_never_reaches_the_cap(
    db, agenda
):
    patient = await _verified_patient(db)
    first = await _book(db, agenda, patient, TUESDAY[0])
    second = await _book(db, agenda, patient, TUESDAY[1])
    await appointments.cancel(db, first.id, channel="whatsapp", now=NOW)

    third = await _book(db, agenda, patient, TUESDAY[2])
    moved = await appointments.reschedule(
        db,
        clinic_rules(),
        second.id,
        starts_at=TUESDAY[3],
        channel="whatsapp",
        self_service=True,
        now=NOW,
    )

    assert third.id and moved.starts_at == TUESDAY[3]
    # Once they are past, they leave the count.
    later = sp(2026, 3, 10, 12)
    await appointments.book(
        db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=agenda.doctor("Ana").id,
        starts_at=sp(2026, 3, 11, 8),
        channel="whatsapp",
        self_service=True,
        now=later,
    )


async def test_a_patient_without_a_verified_contact_cannot_book_on_their_own(db, agenda):
    patient = await make_patient(db)  # a WhatsApp identity whose phone was never proved
    async with db.session() as session:
        (await session.get(User, patient.id)).email = "maria@exemplo.com"  # typed, not confirmed

    with pytest.raises(ContactNotVerified) as refused:
        await _book(db, agenda, patient, TUESDAY[0])

    assert refused.value.status == 403
    attendant = await staff(db)
    booked = await _book(db, agenda, patient, TUESDAY[0], self_service=False, actor_id=attendant.id)
    assert booked.patient_id == patient.id


async def test_a_confirmed_email_is_a_verified_contact(db, agenda):
    patient = await make_patient(db, channels=())
    async with db.session() as session:
        user = await session.get(User, patient.id)
        user.email, user.email_verified_at = "maria@exemplo.com", NOW

    booked = await _book(db, agenda, patient, TUESDAY[0], channel="portal", actor_id=patient.id)

    assert booked.patient_id == patient.id


async def test_the_patients_own_changes_are_paced_and_staff_changes_are_not(db, agenda):
    rules = BookingRules(LocalLimits(), max_per_specialty=10, changes_per_hour=3)
    patient = await _verified_patient(db)
    first = await _book(db, agenda, patient, TUESDAY[0], rules=rules)
    await _book(db, agenda, patient, TUESDAY[1], rules=rules)
    await appointments.cancel(db, first.id, channel="whatsapp", paced_by=rules, now=NOW)

    with pytest.raises(TooManyChanges) as refused:
        await _book(db, agenda, patient, TUESDAY[2], rules=rules)
    assert refused.value.status == 429 and 0 < refused.value.retry_after <= 3600

    attendant = await staff(db)
    await _book(
        db, agenda, patient, TUESDAY[2], rules=rules, self_service=False, actor_id=attendant.id
    )
    # Another patient has a pace of their own.
    await _book(db, agenda, await _verified_patient(db, "José"), TUESDAY[3], rules=rules)


async def test_a_refused_attempt_costs_nothing_from_the_pace(db, agenda):
    rules = BookingRules(LocalLimits(), max_per_specialty=1, changes_per_hour=1)
    patient = await _verified_patient(db)
    await _book(db, agenda, patient, TUESDAY[0], rules=BookingRules(LocalLimits()))
    with pytest.raises(CapReached):
        await _book(db, agenda, patient, TUESDAY[1], rules=rules)

    await _book(db, agenda, patient, WEDNESDAY_8, rules=rules, doctor="Ricardo")
