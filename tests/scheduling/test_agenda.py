"""Slot search, who-is-who lookups and the day's agenda, on the demo clinic's agenda.

Demo hours (clinic time): Dra. Ana Carvalho (clínica geral) Mon-Fri 8-12, 30 min; Dr. Paulo
Mendes (clínica geral) Mon-Fri 13-18; Dr. Ricardo Alves (cardiologia) Mon/Wed/Fri 8-17,
40 min; Dra. Juliana Rocha (dermatologia) Tue/Thu 9-18 and Sat 8-12.
"""

from datetime import UTC, date, timedelta

import pytest

from models import Doctor, ScheduleException, Specialty
from scheduling import appointments
from scheduling.agenda import day_agenda, find_doctor, find_slots, find_specialty
from scheduling.holidays import easter, national_holidays
from scheduling.when import TimeWindow
from tests.factories import clinic_rules
from tests.scheduling.conftest import make_patient, sp


def _local_starts(slots):
    return [(s.starts_at.astimezone(sp(2026, 1, 1).tzinfo).strftime("%a %d %H:%M")) for s in slots]


async def test_nearest_slots_start_at_now_and_skip_times_already_gone(db, agenda):
    cardio = agenda.specialties["cardiologia"]
    async with db.session() as session:
        slots = await find_slots(session, now=sp(2026, 3, 9, 10, 5), specialty_id=cardio.id)

    assert _local_starts(slots) == ["Mon 09 10:40", "Mon 09 11:20", "Mon 09 12:00"]
    assert all(s.doctor_name == "Dr. Ricardo Alves" for s in slots)
    assert slots[0].ends_at - slots[0].starts_at == timedelta(minutes=40)


async def test_a_slot_that_would_run_past_the_end_of_hours_is_not_offered(db, agenda):
    cardio = agenda.specialties["cardiologia"]
    async with db.session() as session:
        slots = await find_slots(session, now=sp(2026, 3, 9, 16, 0), specialty_id=cardio.id)

    # 16:00–16:40 fits before 17h; 16:40–17:20 would not: next is Wednesday morning.
    assert _local_starts(slots) == ["Mon 09 16:00", "Wed 11 08:00", "Wed 11 08:40"]


async def test_no_slots_on_a_clinic_holiday(db, agenda):
    derma = agenda.specialties["dermatologia"]
    async with db.session() as session:
        # Tuesday 21 April 2026 is Tiradentes: the dermatologist's Tuesday is skipped.
        slots = await find_slots(session, now=sp(2026, 4, 20, 18, 0), specialty_id=derma.id)

    assert _local_starts(slots) == ["Thu 23 09:00", "Thu 23 09:30", "Thu 23 10:00"]


async def test_national_holidays_hold_in_any_year_without_being_stored(db, agenda):
    """Only 2026-2027 is seeded; in 2071 Good Friday (17 April, from Easter) and Tiradentes
    (Tuesday 21 April) still close the agenda."""
    cardio, derma = agenda.specialties["cardiologia"], agenda.specialties["dermatologia"]
    ricardo = agenda.doctor("Ricardo")
    async with db.session() as session:
        cardio_slots = await find_slots(session, now=sp(2071, 4, 16, 18), specialty_id=cardio.id)
        derma_slots = await find_slots(session, now=sp(2071, 4, 20, 18), specialty_id=derma.id)
        [good_friday] = await day_agenda(session, day=date(2071, 4, 17), doctor_id=ricardo.id)

    assert _local_starts(cardio_slots) == ["Mon 20 08:00", "Mon 20 08:40", "Mon 20 09:20"]
    assert _local_starts(derma_slots) == ["Thu 23 09:00", "Thu 23 09:30", "Thu 23 10:00"]
    assert good_friday.free == ()
    assert [(b.id, b.reason) for b in good_friday.blocked] == [(None, "Sexta-feira Santa")]


@pytest.mark.parametrize(
    ("year", "sunday"),
    [(2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2038, date(2038, 4, 25))],
)
def test_easter_follows_the_gregorian_computus(year, sunday):
    assert easter(year) == sunday
    holidays = dict((name, day) for day, name in national_holidays(year))
    assert holidays["Sexta-feira Santa"] == sunday - timedelta(days=2)
    assert holidays["Corpus Christi"] == sunday + timedelta(days=60)


async def test_a_doctors_leave_blocks_only_that_doctor(db, agenda):
    ana = agenda.doctor("Ana")
    async with db.session() as session:
        session.add(
            ScheduleException(
                doctor_id=ana.id, starts_at=sp(2026, 3, 10, 8), ends_at=sp(2026, 3, 10, 10)
            )
        )
    async with db.session() as session:
        mine = await find_slots(session, now=sp(2026, 3, 9, 20), doctor_id=ana.id)
        pediatrics = await find_slots(
            session, now=sp(2026, 3, 9, 20), specialty_id=agenda.specialties["pediatria"].id
        )

    assert _local_starts(mine) == ["Tue 10 10:00", "Tue 10 10:30", "Tue 10 11:00"]
    assert _local_starts(pediatrics)[0] == "Tue 10 08:00"


async def test_booked_slots_are_not_offered_and_cancelled_ones_come_back(db, agenda):
    ana = agenda.doctor("Ana")
    patient = await make_patient(db)
    now = sp(2026, 3, 9, 20)
    appointment = await appointments.book(
        db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=ana.id,
        starts_at=sp(2026, 3, 10, 8),
        channel="whatsapp",
        now=now,
        self_service=False,
    )
    async with db.session() as session:
        busy = await find_slots(session, now=now, doctor_id=ana.id, limit=1)
    await appointments.cancel(db, appointment.id, channel="whatsapp", now=now)
    async with db.session() as session:
        free_again = await find_slots(session, now=now, doctor_id=ana.id, limit=1)

    assert _local_starts(busy) == ["Tue 10 08:30"]
    assert _local_starts(free_again) == ["Tue 10 08:00"]


async def test_a_window_keeps_only_slots_starting_inside_it(db, agenda):
    general = agenda.specialties["clinica-geral"]
    friday_morning = TimeWindow(sp(2026, 3, 13, 8), sp(2026, 3, 13, 12))
    async with db.session() as session:
        slots = await find_slots(
            session,
            now=sp(2026, 3, 9, 10),
            window=friday_morning,
            specialty_id=general.id,
            limit=10,
        )

    assert len(slots) == 8
    assert _local_starts(slots)[0] == "Fri 13 08:00"
    assert _local_starts(slots)[-1] == "Fri 13 11:30"
    assert {s.doctor_name for s in slots} == {"Dra. Ana Carvalho"}


async def test_a_window_already_over_has_no_slots(db, agenda):
    general = agenda.specialties["clinica-geral"]
    this_morning = TimeWindow(sp(2026, 3, 9, 8), sp(2026, 3, 9, 12))
    async with db.session() as session:
        slots = await find_slots(
            session, now=sp(2026, 3, 9, 12, 30), window=this_morning, specialty_id=general.id
        )

    assert slots == []


async def test_an_exact_time_gives_that_time_or_the_nearest_around_it(db, agenda):
    general = agenda.specialties["clinica-geral"]
    at_14_10 = TimeWindow(sp(2026, 3, 11, 14, 10), sp(2026, 3, 11, 14, 10))
    async with db.session() as session:
        slots = await find_slots(
            session, now=sp(2026, 3, 9, 10), window=at_14_10, specialty_id=general.id
        )

    assert _local_starts(slots) == ["Wed 11 14:00", "Wed 11 14:30", "Wed 11 13:30"]


async def test_an_exact_time_on_a_closed_day_gives_the_next_free_slots(db, agenda):
    ana = agenda.doctor("Ana")
    sunday_ten = TimeWindow(sp(2026, 3, 15, 10), sp(2026, 3, 15, 10))
    async with db.session() as session:
        slots = await find_slots(
            session, now=sp(2026, 3, 9, 10), window=sunday_ten, doctor_id=ana.id
        )

    assert _local_starts(slots) == ["Mon 16 08:00", "Mon 16 08:30", "Mon 16 09:00"]


async def test_sao_paulo_time_has_no_daylight_saving(db, agenda):
    ana = agenda.doctor("Ana")
    async with db.session() as session:
        # November and January were summer time until 2019; now 8h is always 11h UTC.
        november = await find_slots(session, now=sp(2026, 11, 3, 7), doctor_id=ana.id, limit=1)
        january = await find_slots(session, now=sp(2027, 1, 5, 7), doctor_id=ana.id, limit=1)

    assert november[0].starts_at.astimezone(UTC).hour == 11
    assert january[0].starts_at.astimezone(UTC).hour == 11


async def test_inactive_doctors_offer_nothing(db, agenda):
    async with db.session() as session:
        doctor = await session.get(Doctor, agenda.doctor("Ricardo").id)
        doctor.active_until = date(2026, 3, 8)
    async with db.session() as session:
        slots = await find_slots(
            session, now=sp(2026, 3, 9, 10), specialty_id=agenda.specialties["cardiologia"].id
        )

    assert slots == []


async def test_the_specialty_the_patient_typed_is_found_without_accents_or_case(db, agenda):
    expected = {
        "cardio": "cardiologia",
        "Cardiologista": "cardiologia",
        "pediatra": "pediatria",
        "PEDIATRIA": "pediatria",
        "clínico geral": "clinica-geral",
        "clinica geral": "clinica-geral",
        "dermatologista": "dermatologia",
        "problema de pele": "dermatologia",
        "ginecologista": "ginecologia",
        "quero marcar com um cardiologista": "cardiologia",
    }
    async with db.session() as session:
        found = {text: await find_specialty(session, text) for text in expected}
        unknown = await find_specialty(session, "ortopedista")

    assert {text: s.slug for text, s in found.items() if s} == expected
    assert unknown is None


async def test_the_doctor_the_patient_typed_is_found_by_title_and_name(db, agenda):
    async with db.session() as session:
        found = {
            text: await find_doctor(session, text)
            for text in (
                "dra ana",
                "Doutor Paulo",
                "carvalho",
                "quero com a dra. juliana",
                "ricardo",
            )
        }
        unknown = await find_doctor(session, "dr joão")

    assert {text: d.name for text, d in found.items() if d} == {
        "dra ana": "Dra. Ana Carvalho",
        "Doutor Paulo": "Dr. Paulo Mendes",
        "carvalho": "Dra. Ana Carvalho",
        "quero com a dra. juliana": "Dra. Juliana Rocha",
        "ricardo": "Dr. Ricardo Alves",
    }
    assert unknown is None


async def test_two_doctors_matching_equally_is_no_answer_rather_than_a_guess(db, agenda):
    async with db.session() as session:
        specialty = await session.get(Specialty, agenda.specialties["pediatria"].id)
        session.add(Doctor(name="Dra. Ana Beatriz Lima", specialties=[specialty]))
    async with db.session() as session:
        ambiguous = await find_doctor(session, "dra ana")
        precise = await find_doctor(session, "dra ana beatriz")

    assert ambiguous is None
    assert precise.name == "Dra. Ana Beatriz Lima"


async def test_the_days_agenda_shows_each_doctors_appointments_and_free_slots(db, agenda):
    ana = agenda.doctor("Ana")
    patient = await make_patient(db, "João Pereira")
    now = sp(2026, 3, 9, 20)
    first = await appointments.book(
        db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=ana.id,
        starts_at=sp(2026, 3, 10, 8),
        channel="webchat",
        now=now,
        self_service=False,
    )
    await appointments.book(
        db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=ana.id,
        starts_at=sp(2026, 3, 10, 9),
        channel="webchat",
        now=now,
        self_service=False,
    )
    await appointments.confirm(db, first.id, channel="webchat", now=now)
    async with db.session() as session:
        days = await day_agenda(session, day=sp(2026, 3, 10).date())
        saturday = await day_agenda(session, day=sp(2026, 3, 14).date())

    by_doctor = {d.doctor.name: d for d in days}
    ana_day = by_doctor["Dra. Ana Carvalho"]
    assert [(i.patient_name, str(i.appointment.status)) for i in ana_day.appointments] == [
        ("João Pereira", "confirmada"),
        ("João Pereira", "agendada"),
    ]
    assert len(ana_day.free) == 8 - 2
    # Tuesday: Ricardo (Mon/Wed/Fri) does not work and has nothing booked.
    assert "Dr. Ricardo Alves" not in by_doctor
    assert [d.doctor.name for d in saturday] == ["Dra. Juliana Rocha"]
