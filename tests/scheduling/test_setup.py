"""The clinic's own agenda set-up (scheduling.setup), on both databases: what an admin saves
is what slot search offers at once; what cannot be an agenda is refused with nothing saved;
booked appointments never move."""

from datetime import date, timedelta

import pytest
from alembic import command
from sqlalchemy import create_engine, func, select, text

from core.audit import AuditAction
from models import Appointment, AppointmentStatus, AuditLog, Doctor, Role
from models.db import sync_url
from models.migrate import alembic_config
from scheduling import appointments, setup
from scheduling.agenda import day_agenda, find_doctor, find_slots, find_specialty
from scheduling.setup import SetupConflict, SetupError, doctor_form
from tests.factories import clinic_rules, staff
from tests.scheduling.conftest import make_patient, sp

# Tuesday 10 March 2026, before the clinic opens.
TUESDAY_MORNING = sp(2026, 3, 10, 7)


def _local(slots):
    return [s.starts_at.astimezone(TUESDAY_MORNING.tzinfo).strftime("%a %d %H:%M") for s in slots]


def _form(ids, **changes):
    body = {
        "name": "Dra. Beatriz Moura",
        "crm": "CRM-SP 999001",
        "specialty_ids": ids,
        "convenios": ["Unimed"],
        "slot_minutes": 20,
        "hours": [{"weekday": 1, "starts": "14:00", "ends": "18:00"}],
        **changes,
    }
    return doctor_form(body)


async def _admin(db):
    return await staff(db, Role.ADMIN)


async def test_a_doctor_the_admin_adds_is_offered_at_once_in_the_specialties_they_serve(db, agenda):
    admin = await _admin(db)
    endo = await setup.create_specialty(db, admin, "Endocrinologia")
    general = agenda.specialties["clinica-geral"]
    await setup.create_doctor(db, admin, _form([endo.id, general.id]))

    async with db.session() as session:
        endo_slots = await find_slots(session, now=TUESDAY_MORNING, specialty_id=endo.id, limit=13)
        named = await find_specialty(session, "quero marcar endocrinologia")
        doctor = await find_doctor(session, "com a dra beatriz")
        general_doctors = {
            s.doctor_name
            for s in await find_slots(
                session, now=sp(2026, 3, 10, 17, 30), specialty_id=general.id, limit=5
            )
        }
        changes = await session.scalar(
            select(func.count(AuditLog.id)).where(AuditLog.action == AuditAction.AGENDA_CHANGED)
        )

    # Tuesday 14h-18h in 20-minute slots (12 of them), then the next Tuesday.
    assert _local(endo_slots)[:3] == ["Tue 10 14:00", "Tue 10 14:20", "Tue 10 14:40"]
    assert _local(endo_slots)[11:] == ["Tue 10 17:40", "Tue 17 14:00"]
    assert {s.specialty_name for s in endo_slots} == {"Endocrinologia"}
    assert named is not None and named.id == endo.id
    assert doctor is not None and doctor.convenios == ["Unimed"]
    assert "Dra. Beatriz Moura" in general_doctors
    assert changes == 2


async def test_a_booking_is_in_the_specialty_it_was_searched_in(db, agenda):
    admin = await _admin(db)
    endo = await setup.create_specialty(db, admin, "Endocrinologia")
    general = agenda.specialties["clinica-geral"]
    doctor = await setup.create_doctor(db, admin, _form([endo.id, general.id]))
    patient = await make_patient(db)

    booked = await appointments.book(
        db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=doctor.id,
        specialty_id=endo.id,
        starts_at=sp(2026, 3, 10, 14, 20),
        channel="portal",
        self_service=False,
        now=TUESDAY_MORNING,
    )

    assert booked.specialty_id == endo.id
    assert booked.ends_at - booked.starts_at == timedelta(minutes=20)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        (
            {
                "hours": [
                    {"weekday": 1, "starts": "14:00", "ends": "18:00"},
                    {"weekday": 1, "starts": "17:00", "ends": "19:00"},
                ]
            },
            "agenda_setup.error.hours_overlap",
        ),
        (
            {"hours": [{"weekday": 1, "starts": "18:00", "ends": "14:00"}]},
            "agenda_setup.error.hours_order",
        ),
        (
            {"hours": [{"weekday": 1, "starts": "14:00", "ends": "14:10"}]},
            "agenda_setup.error.hours_short",
        ),
        (
            {"hours": [{"weekday": 7, "starts": "14:00", "ends": "18:00"}]},
            "agenda_setup.error.hours",
        ),
        ({"slot_minutes": 4}, "agenda_setup.error.slot_minutes"),
        ({"slot_minutes": 241}, "agenda_setup.error.slot_minutes"),
        ({"active_from": "2026-05-01", "active_until": "2026-04-30"}, "agenda_setup.error.dates"),
        ({"specialty_ids": []}, "agenda_setup.error.specialties"),
        ({"name": "  "}, "agenda_setup.error.doctor_name"),
    ],
)
def test_what_cannot_be_an_agenda_is_refused_with_its_reason(changes, code):
    with pytest.raises(SetupError) as refused:
        _form([1], **changes)

    assert refused.value.code == code
    assert refused.value.status == 400


def test_several_ranges_on_one_weekday_are_kept_when_they_do_not_overlap():
    form = _form(
        [1],
        hours=[
            {"weekday": 1, "starts": "14:00", "ends": "18:00"},
            {"weekday": 1, "starts": "08:00", "ends": "12:00"},
        ],
    )

    assert [(r.starts.hour, r.ends.hour) for r in form.hours] == [(8, 12), (14, 18)]


async def test_an_unknown_specialty_or_convenio_saves_nothing(db, agenda):
    admin = await _admin(db)
    general = agenda.specialties["clinica-geral"]

    with pytest.raises(SetupError) as unknown_plan:
        await setup.create_doctor(db, admin, _form([general.id], convenios=["Plano Fictício"]))
    with pytest.raises(SetupError) as unknown_specialty:
        await setup.create_doctor(db, admin, _form([general.id, 9999]))

    assert unknown_plan.value.code == "agenda_setup.error.convenio"
    assert unknown_specialty.value.code == "agenda_setup.error.specialties"
    async with db.session() as session:
        assert await session.scalar(select(Doctor.id).where(Doctor.name.like("%Beatriz%"))) is None


async def test_specialty_names_are_unique_whatever_their_accents_and_case(db, agenda):
    admin = await _admin(db)

    with pytest.raises(SetupConflict):
        await setup.create_specialty(db, admin, "clinica GERAL")
    renamed = await setup.rename_specialty(
        db, admin, agenda.specialties["pediatria"].id, "Pediatria e Neonatologia"
    )

    assert (renamed.name, renamed.slug) == ("Pediatria e Neonatologia", "pediatria-e-neonatologia")
    async with db.session() as session:
        assert (await find_specialty(session, "neonatologia")).id == renamed.id


async def test_a_new_slot_length_does_not_move_booked_appointments(db, agenda):
    admin = await _admin(db)
    ricardo = agenda.doctor("Ricardo")  # cardiologia, Mon/Wed/Fri 8-17, 40 min
    patient = await make_patient(db)
    monday = sp(2026, 3, 9, 7)
    booked = await appointments.book(
        db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=ricardo.id,
        starts_at=sp(2026, 3, 9, 8, 40),
        channel="portal",
        self_service=False,
        now=monday,
    )
    body = {
        "name": ricardo.name,
        "specialty_ids": [agenda.specialties["cardiologia"].id],
        "slot_minutes": 30,
        "hours": [{"weekday": d, "starts": "08:00", "ends": "17:00"} for d in (0, 2, 4)],
    }

    await setup.update_doctor(db, admin, ricardo.id, doctor_form(body))

    async with db.session() as session:
        kept = await session.get_one(Appointment, booked.id)
        slots = await find_slots(session, now=monday, doctor_id=ricardo.id, limit=3)
    assert (kept.starts_at, kept.ends_at, kept.status) == (
        booked.starts_at,
        booked.ends_at,
        AppointmentStatus.SCHEDULED,
    )
    # 30-minute slots from now on, around the 8:40-9:20 appointment.
    assert _local(slots) == ["Mon 09 08:00", "Mon 09 09:30", "Mon 09 10:00"]


async def test_a_doctor_whose_dates_end_keeps_booked_appointments_and_offers_nothing_after(
    db, agenda
):
    admin = await _admin(db)
    ana = agenda.doctor("Ana")  # clínica geral, Mon-Fri 8-12
    patient = await make_patient(db)
    booked = await appointments.book(
        db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=ana.id,
        starts_at=sp(2026, 3, 20, 9),
        channel="portal",
        self_service=False,
        now=TUESDAY_MORNING,
    )
    body = {
        "name": ana.name,
        "specialty_ids": [agenda.specialties["clinica-geral"].id],
        "slot_minutes": 30,
        "hours": [{"weekday": d, "starts": "08:00", "ends": "12:00"} for d in range(5)],
        "active_until": "2026-03-13",
    }

    await setup.update_doctor(db, admin, ana.id, doctor_form(body))

    async with db.session() as session:
        last_week = await find_slots(session, now=sp(2026, 3, 13, 11), doctor_id=ana.id, limit=3)
        [day] = await day_agenda(session, day=date(2026, 3, 20), doctor_id=ana.id)
        kept = await session.get_one(Appointment, booked.id)
    assert _local(last_week) == ["Fri 13 11:00", "Fri 13 11:30"]
    assert kept.status == AppointmentStatus.SCHEDULED
    assert [i.appointment.id for i in day.appointments] == [booked.id]
    assert (day.hours, day.free) == ((), ())


async def test_a_clinic_holiday_removes_its_day_until_it_is_removed(db, agenda):
    admin = await _admin(db)
    derma = agenda.specialties["dermatologia"]  # Tue/Thu 9-18, Sat 8-12
    now = sp(2026, 3, 9, 12)

    holiday = await setup.add_holiday(db, admin, "2026-03-10", "Aniversário da cidade", now=now)
    with pytest.raises(SetupConflict):
        await setup.add_holiday(db, admin, "2026-03-10", "Outro", now=now)
    with pytest.raises(SetupError):
        await setup.add_holiday(db, admin, "2026-03-08", "Ontem", now=now)
    async with db.session() as session:
        closed = await find_slots(session, now=now, specialty_id=derma.id, limit=1)
        listed = await setup.holidays(session, since=date(2026, 3, 9))
    await setup.remove_holiday(db, admin, holiday.id)
    async with db.session() as session:
        reopened = await find_slots(session, now=now, specialty_id=derma.id, limit=1)

    assert _local(closed) == ["Thu 12 09:00"]
    assert (listed[0].id, listed[0].reason) == (holiday.id, "Aniversário da cidade")
    assert _local(reopened) == ["Tue 10 09:00"]


def test_the_migration_moves_each_doctors_specialty_and_inactive_flag(database_url):
    config = alembic_config(database_url)
    command.downgrade(config, "0027-1")
    engine = create_engine(sync_url(database_url), future=True)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO specialties (id, name, slug) VALUES (7, 'X', 'x')"))
        connection.execute(
            text(
                "INSERT INTO doctors (id, name, specialty_id, slot_minutes, is_active) VALUES "
                "(1, 'Dr. Ativo', 7, 30, true), (2, 'Dr. Inativo', 7, 30, false)"
            )
        )
    command.upgrade(config, "head")
    with engine.connect() as connection:
        served = connection.execute(
            text("SELECT doctor_id, specialty_id FROM doctor_specialties ORDER BY doctor_id")
        ).all()
        until = dict(connection.execute(text("SELECT id, active_until FROM doctors")).all())
    engine.dispose()

    assert [tuple(r) for r in served] == [(1, 7), (2, 7)]
    assert until[1] is None
    assert until[2] is not None and str(until[2]) < date.today().isoformat()
