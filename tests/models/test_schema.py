from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError

from models import Appointment, AppointmentStatus, Base, Doctor, Specialty, User
from models.db import sync_url
from models.search import include_object


def test_migrations_create_exactly_the_models(database_url):
    engine = create_engine(sync_url(database_url), future=True)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


async def _doctor_and_patient(db):
    async with db.session() as session:
        specialty = Specialty(name="Cardiologia", slug="cardiologia")
        doctor = Doctor(name="Dr. Teste", specialties=[specialty])
        patient = User(name="Maria")
        session.add_all([doctor, patient])
    return doctor, patient


def _appointment(doctor, patient, starts, status=AppointmentStatus.SCHEDULED):
    return Appointment(
        patient_id=patient.id,
        doctor_id=doctor.id,
        specialty_id=doctor.specialties[0].id,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=30),
        status=status,
    )


async def test_the_database_refuses_two_active_bookings_of_one_slot(db):
    doctor, patient = await _doctor_and_patient(db)
    starts = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    async with db.session() as session:
        session.add(_appointment(doctor, patient, starts))

    with pytest.raises(IntegrityError):
        async with db.session() as session:
            session.add(_appointment(doctor, patient, starts))


async def test_a_cancelled_booking_frees_the_slot(db):
    doctor, patient = await _doctor_and_patient(db)
    starts = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    async with db.session() as session:
        session.add(_appointment(doctor, patient, starts, AppointmentStatus.CANCELLED))
    async with db.session() as session:
        session.add(_appointment(doctor, patient, starts))


async def test_times_come_back_aware_in_utc(db):
    sao_paulo = timezone(timedelta(hours=-3))
    async with db.session() as session:
        user = User(name="Maria", created_at=datetime(2026, 5, 1, 9, 0, tzinfo=sao_paulo))
        session.add(user)
    async with db.session() as session:
        stored = await session.get(User, user.id)
    assert stored.created_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert stored.created_at.utcoffset() == timedelta(0)


async def test_naive_datetimes_are_refused(db):
    with pytest.raises(Exception, match="naive"):
        async with db.session() as session:
            session.add(User(name="Maria", created_at=datetime(2026, 5, 1, 9, 0)))
