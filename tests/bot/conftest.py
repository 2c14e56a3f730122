"""Actions run against a real database (SQLite and PostgreSQL) with trackers shaped like the
ones Rasa sends to the action server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from bot.actions.common import use_booking_rules, use_database
from models import (
    ChannelIdentity,
    ClinicProfile,
    Doctor,
    PatientProfile,
    Role,
    Specialty,
    User,
    utcnow,
)
from models.db import Database
from scripts.demo_clinic import CLINIC_PROFILE, add_agenda
from tests.factories import clinic_rules


@dataclass
class Clinic:
    db: Database
    doctors: dict[str, Doctor]
    specialties: dict[str, Specialty]

    def doctor(self, first_name: str) -> Doctor:
        return next(d for name, d in self.doctors.items() if first_name in name)


@pytest.fixture
async def clinic_db(db: Database) -> AsyncIterator[Clinic]:
    """The demo clinic's profile and agenda, with the actions pointed at this database."""
    year = utcnow().year
    async with db.session() as session:
        session.add(ClinicProfile(name="Clínica Vida Plena", data=CLINIC_PROFILE))
        add_agenda(session, [year, year + 1])
    async with db.session() as session:
        doctors = (await session.execute(select(Doctor))).scalars().all()
        specialties = (await session.execute(select(Specialty))).scalars().all()
    use_database(db)
    use_booking_rules(clinic_rules())
    yield Clinic(db, {d.name: d for d in doctors}, {s.slug: s for s in specialties})
    use_booking_rules(None)
    use_database(None)


async def new_patient(
    db: Database,
    *,
    name: str | None = None,
    cpf: str | None = None,
    phone: str | None = None,
    whatsapp: str | None = None,
) -> User:
    """A patient of the site widget; `whatsapp`: who also writes from that phone on WhatsApp
    (a phone the provider proved: a verified contact)."""
    async with db.session() as session:
        patient = User(role=Role.PATIENT, name=name, cpf=cpf, phone_e164=phone)
        patient.patient_profile = PatientProfile(preferred_channel="webchat")
        session.add(patient)
        await session.flush()
        session.add(
            ChannelIdentity(channel="webchat", external_id=f"v-{patient.id}", patient_id=patient.id)
        )
        if whatsapp:
            session.add(
                ChannelIdentity(
                    channel="whatsapp",
                    external_id=whatsapp.lstrip("+"),
                    patient_id=patient.id,
                    verified_phone=whatsapp,
                )
            )
    return patient


def tracker(
    patient: int | str,
    text: str = "",
    *,
    intent: str = "informar",
    confidence: float = 0.99,
    entities: dict[str, str] | None = None,
    slots: dict[str, Any] | None = None,
    active_loop: str | None = None,
    events: list[dict[str, Any]] | None = None,
    faq_key: str | None = None,
    conversation_id: int | None = None,
    input_channel: str | None = None,
) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "entities": [{"entity": k, "value": v} for k, v in (entities or {}).items()],
        "metadata": {"conversation_id": conversation_id} if conversation_id else {},
    }
    if faq_key:
        latest["response_selector"] = {
            "default": {"response": {"intent_response_key": f"faq/{faq_key}"}}
        }
    return Tracker(
        sender_id=str(patient),
        slots={"requested_slot": None, **(slots or {})},
        latest_message=latest,
        events=events
        or [{"event": "user", "text": text, "parse_data": latest, "input_channel": input_channel}],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def sent(dispatcher: CollectingDispatcher) -> list[str]:
    """The responses (by name) and custom payloads an action sent, in order."""
    return [
        m.get("response") or ("handoff" if m.get("custom") else m.get("text"))
        for m in dispatcher.messages
    ]


def handoff_of(dispatcher: CollectingDispatcher) -> dict[str, str] | None:
    return next(
        (
            m["custom"]["handoff"]
            for m in dispatcher.messages
            if "handoff" in (m.get("custom") or {})
        ),
        None,
    )
