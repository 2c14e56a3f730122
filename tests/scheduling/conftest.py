"""The demo clinic's agenda and patients on their channels, on both databases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import select

from models import ChannelIdentity, ClinicProfile, Doctor, PatientProfile, Role, Specialty, User
from models.db import Database
from scheduling.agenda import CLINIC_TZ
from scripts.demo_clinic import CLINIC_PROFILE, add_agenda


def sp(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A São Paulo wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=CLINIC_TZ)


@dataclass
class Agenda:
    doctors: dict[str, Doctor]
    specialties: dict[str, Specialty]

    def doctor(self, first_name: str) -> Doctor:
        return next(d for name, d in self.doctors.items() if first_name in name)


@pytest.fixture
async def agenda(db: Database) -> Agenda:
    """The demo clinic's specialties, doctors, hours and 2026-2027 holidays."""
    async with db.session() as session:
        session.add(ClinicProfile(name="Clínica Vida Plena", data=CLINIC_PROFILE))
        add_agenda(session, [2026, 2027])
    async with db.session() as session:
        doctors = (await session.execute(select(Doctor))).scalars().all()
        specialties = (await session.execute(select(Specialty))).scalars().all()
    return Agenda(
        doctors={d.name: d for d in doctors}, specialties={s.slug: s for s in specialties}
    )


async def make_patient(
    db: Database,
    name: str = "Maria da Silva",
    *,
    channels: tuple[str, ...] = ("whatsapp",),
    preferred: str | None = None,
    opt_in: bool = True,
) -> User:
    """A patient known on the given channels (one identity each)."""
    async with db.session() as session:
        patient = User(name=name, role=Role.PATIENT)
        patient.patient_profile = PatientProfile(
            preferred_channel=preferred or (channels[0] if channels else None),
            reminders_opt_in=opt_in,
        )
        session.add(patient)
        await session.flush()
        for channel in channels:
            session.add(
                ChannelIdentity(
                    channel=channel, external_id=f"{channel}-{patient.id}", patient_id=patient.id
                )
            )
    return patient
