"""The data subject's rights over real HTTP on both databases: versioned consent and its
withdrawal, the export of every category the clinic holds (JSON and the readable HTML),
erasure from the portal and by an admin (history, identities, the assistant's tracker and
the console outbox go; appointments stay, anonymised), and the retention job."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from accounts import consent
from accounts.auth import hash_password
from accounts.erasure import erase_expired
from channels.outbox import OutboxSender
from core import audit
from core.audit import AuditAction
from core.catalog import t
from messaging.history import record_outbound
from models import (
    Appointment,
    AttendantAction,
    AuditLog,
    AuthorKind,
    ChannelIdentity,
    Consent,
    Conversation,
    Message,
    PatientProfile,
    Reminder,
    ReminderStatus,
    Role,
    User,
    utcnow,
)
from models.db import async_url, is_sqlite
from scripts.demo_clinic import add_agenda
from tests.factories import booked, patient_message, staff
from tests.portal.test_patient_accounts import MARIA
from tests.webapp import logged_in, web_server
from web.keys import CTX

PASSWORD = "senha-da-paciente"
TYPED = "meu cpf é 529.982.247-25"
NOTE = "Paciente prefere horários pela manhã"


@pytest.fixture
async def server(settings) -> AsyncIterator:
    async with web_server(settings) as server:
        async with server.app[CTX].db.session() as session:
            add_agenda(session, [utcnow().year, utcnow().year + 1])
        yield server


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


# --- The assistant's tracker store, as Rasa's SQL tracker store lays it out ------------------


def _events_table(url: str) -> str:
    return "events" if is_sqlite(url) else "rasa.events"


async def _tracker_execute(url: str, sql: str, **params) -> list:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(sql), params)
            return list(result) if result.returns_rows else []
    finally:
        await engine.dispose()


async def _tracker_with(url: str, *senders: int) -> None:
    table = _events_table(url)
    await _tracker_execute(
        url,
        f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, sender_id VARCHAR(255), "
        "type_name VARCHAR(255), data TEXT)",
    )
    for n, sender in enumerate(senders):
        await _tracker_execute(
            url,
            f"INSERT INTO {table} (id, sender_id, type_name, data) VALUES (:id, :s, 'slot', :d)",
            id=sender * 100 + n,
            s=str(sender),
            d=json.dumps({"event": "slot", "name": "nome", "value": "Maria"}),
        )


async def _tracker_senders(url: str) -> list[str]:
    rows = await _tracker_execute(url, f"SELECT sender_id FROM {_events_table(url)}")
    return sorted({row[0] for row in rows})


# --- One patient with something in every category -------------------------------------------


@dataclass
class Seeded:
    patient_id: int
    other_id: int
    attendant: User
    appointment_id: int
    external_id: str


async def _seed(server, outbox: Path) -> Seeded:
    db = server.app[CTX].db
    recorded = await patient_message(db, TYPED, channel="webchat")
    patient_id = recorded.message.patient_id
    other = await patient_message(db, "oi, sou outra pessoa", channel="webchat")
    attendant = await staff(db, Role.ATTENDANT)
    async with db.session() as session:
        patient = await session.get_one(User, patient_id)
        patient.name, patient.email, patient.cpf = (
            "Maria da Silva",
            "maria@exemplo.com",
            "52998224725",
        )
        patient.phone_e164 = "+5511987654321"
        patient.password_hash = hash_password(PASSWORD)
        patient.email_verified_at = utcnow()
        await consent.grant(session, patient_id, consent.SERVICE, channel="webchat")
        conversation = await session.get_one(Conversation, recorded.message.conversation_id)
        reply = await record_outbound(
            session, conversation, text="Olá, Maria! Como posso ajudar?", author_kind=AuthorKind.BOT
        )
        await record_outbound(
            session,
            conversation,
            text=NOTE,
            author_kind=AuthorKind.ATTENDANT,
            author_id=attendant.id,
            internal=True,
        )
        session.add(
            AttendantAction(
                patient_id=patient_id,
                conversation_id=conversation.id,
                actor_id=attendant.id,
                kind="exames_entregues",
                details={"exame": "hemograma"},
            )
        )
        await audit.record(
            session, attendant, AuditAction.READ_HISTORY, patient_id=patient_id, ip="10.0.0.9"
        )
        identity = await session.get_one(ChannelIdentity, conversation.channel_identity_id)
        other_identity = await session.get_one(ChannelIdentity, other.identity.id)
        other_reply = await record_outbound(
            session,
            await session.get_one(Conversation, other.message.conversation_id),
            text="Olá!",
            author_kind=AuthorKind.BOT,
        )
    appointment = await booked(db, await _user(server, patient_id))
    async with db.session() as session:
        session.add(
            Reminder(
                appointment_id=appointment.id,
                offset_minutes=1440,
                due_at=utcnow(),
                status=ReminderStatus.SENT,
                channel="webchat",
                message_id=reply.id,
                sent_at=utcnow(),
            )
        )
    sender = OutboxSender("webchat", folder=outbox)
    server.app[CTX].senders = {"webchat": sender}  # the console channel, as in development
    await sender.deliver(reply, identity)
    await sender.deliver(other_reply, other_identity)
    tracker_url = server.app[CTX].settings.rasa_tracker_url
    await _tracker_with(tracker_url, patient_id, other.message.patient_id)
    return Seeded(
        patient_id, other.message.patient_id, attendant, appointment.id, identity.external_id
    )


async def _user(server, user_id: int) -> User:
    async with server.app[CTX].db.session() as session:
        return await session.get_one(User, user_id)


async def _count(server, model, *where) -> int:
    async with server.app[CTX].db.session() as session:
        query = select(func.count()).select_from(model).where(*where)
        return (await session.execute(query)).scalar_one()


@pytest.fixture
async def seeded(server, outbox) -> Seeded:
    return await _seed(server, outbox)


@pytest.fixture
async def maria(server, seeded) -> AsyncIterator[aiohttp.ClientSession]:
    http = await logged_in(server, "maria@exemplo.com", PASSWORD)
    yield http
    await http.close()


@pytest.fixture
async def admin(server) -> AsyncIterator[aiohttp.ClientSession]:
    user = await staff(server.app[CTX].db, Role.ADMIN, password="senha-do-admin")
    http = await logged_in(server, user.email, "senha-do-admin")
    yield http
    await http.close()


# --- Consent ---------------------------------------------------------------------------------


async def test_sign_up_records_consent_to_the_current_texts_on_the_portal(server):
    http = aiohttp.ClientSession(base_url=str(server.make_url("")))
    async with http.post("/api/signup", json=MARIA) as response:
        assert response.status == 202
    await http.close()
    async with server.app[CTX].db.session() as session:  # she followed the mailed link
        patient = (await session.execute(select(User).where(User.cpf.is_not(None)))).scalar_one()
        patient.email_verified_at = utcnow()
    http = await logged_in(server, MARIA["email"], MARIA["password"])
    async with http.get("/api/portal/consents") as response:
        listed = {c["purpose"]: c for c in await response.json()}
    await http.close()
    assert listed["atendimento"]["granted_version"] == t("consent.atendimento.version")
    assert listed["lembretes"]["granted_at"] is not None
    assert listed["marketing"]["granted_at"] is None  # a separate opt-in, never by default
    async with server.app[CTX].db.session() as session:
        records = (await session.execute(select(Consent))).scalars().all()
    assert {(c.purpose, c.channel) for c in records} == {
        ("atendimento", "portal"),
        ("lembretes", "portal"),
    }


async def test_withdrawing_reminders_stops_them_and_keeps_the_record(server, seeded, maria):
    async with maria.post("/api/portal/consents/lembretes") as response:
        assert response.status == 200
    async with maria.post("/api/portal/consents/lembretes/withdraw") as response:
        listed = {c["purpose"]: c for c in await response.json()}
    assert listed["lembretes"]["granted_at"] is None
    assert listed["atendimento"]["granted_at"] is not None  # the other purposes stay
    async with server.app[CTX].db.session() as session:
        profile = await session.get_one(PatientProfile, seeded.patient_id)
        [record] = (
            await session.execute(select(Consent).where(Consent.purpose == "lembretes"))
        ).scalars()
    assert profile.reminders_opt_in is False  # what the reminder dispatch checks
    assert record.withdrawn_at is not None and record.withdrawn_channel == "portal"


async def test_withdrawing_service_consent_makes_the_bot_ask_again(server, seeded, maria):
    async with maria.post("/api/portal/consents/atendimento/withdraw") as response:
        assert response.status == 200
    async with server.app[CTX].db.session() as session:
        profile = await session.get_one(PatientProfile, seeded.patient_id)
    assert profile.lgpd_consent_at is None  # bot.actions.identity asks consent when unset


async def test_an_unknown_purpose_is_a_404(maria):
    async with maria.post("/api/portal/consents/vendas") as response:
        assert response.status == 404


# --- Export ----------------------------------------------------------------------------------


async def test_the_json_export_holds_every_category(server, seeded, maria):
    async with maria.get("/api/portal/export") as response:
        assert response.status == 200
        assert "attachment" in response.headers["Content-Disposition"]
        data = json.loads(await response.text())
    assert data["profile"]["cpf"] == "52998224725"
    assert [c["purpose"] for c in data["consents"]] == ["atendimento"]
    assert [c["channel"] for c in data["channels"]] == ["webchat"]
    assert [m["text"] for m in data["messages"]] == [TYPED, "Olá, Maria! Como posso ajudar?"]
    assert [n["text"] or n["kind"] for n in data["staff_notes"]] == [NOTE, "exames_entregues"]
    [appointment] = data["appointments"]
    assert appointment["history"][0]["to_status"] == "agendada"
    assert [r["status"] for r in appointment["reminders"]] == ["sent"]
    [access] = [e for e in data["access_log"] if e["action"] == "read_history"]
    assert access["by"] == seeded.attendant.name


async def test_the_html_export_is_readable_portuguese_in_clinic_time(server, seeded, maria):
    async with maria.get("/api/portal/export.html") as response:
        assert response.headers["Content-Type"].startswith("text/html")
        page = await response.text()
    for heading in (
        "export.consents",
        "export.messages",
        "export.staff_notes",
        "export.appointments",
        "export.access_log",
        "export.identities",
    ):
        assert f"<h2>{t(heading)}</h2>" in page
    assert NOTE in page and "Maria da Silva" in page and "<script" not in page
    async with server.app[CTX].db.session() as session:
        sent = (await session.execute(select(Message.created_at).limit(1))).scalar_one()
    local = sent.astimezone(__import__("zoneinfo").ZoneInfo("America/Sao_Paulo"))
    assert local.strftime("%d/%m/%Y %H:%M") in page


async def test_exports_are_audited_and_admins_export_any_patient(server, seeded, maria, admin):
    async with maria.get("/api/portal/export") as response:
        assert response.status == 200
    async with admin.get(f"/api/admin/patients/{seeded.patient_id}/export.html") as response:
        assert response.status == 200
    async with maria.get(f"/api/admin/patients/{seeded.other_id}/export") as response:
        assert response.status == 403  # a patient never exports someone else
    async with server.app[CTX].db.session() as session:
        rows = (
            (await session.execute(select(AuditLog).where(AuditLog.action == AuditAction.EXPORT)))
            .scalars()
            .all()
        )
    assert sorted((r.actor_id == seeded.patient_id, r.details["format"]) for r in rows) == [
        (False, "html"),
        (True, "json"),
    ]


# --- Erasure ---------------------------------------------------------------------------------


async def _assert_erased(server, seeded: Seeded, outbox: Path) -> None:
    patient = await _user(server, seeded.patient_id)
    assert (patient.name, patient.email, patient.cpf, patient.phone_e164) == (
        t("privacy.anonymised_name"),
        None,
        None,
        None,
    )
    assert not patient.is_active and patient.erased_at is not None
    assert await _count(server, Message, Message.patient_id == seeded.patient_id) == 0
    assert (
        await _count(server, AttendantAction, AttendantAction.patient_id == seeded.patient_id) == 0
    )
    assert (
        await _count(server, ChannelIdentity, ChannelIdentity.external_id == seeded.external_id)
        == 0
    )
    # Appointments stay as clinical/fiscal records, linked to the anonymised row only.
    async with server.app[CTX].db.session() as session:
        appointment = await session.get_one(Appointment, seeded.appointment_id)
    assert appointment.patient_id == seeded.patient_id
    assert await _count(server, Reminder, Reminder.appointment_id == seeded.appointment_id) == 1
    # The other patient keeps everything.
    assert await _count(server, Message, Message.patient_id == seeded.other_id) == 2
    tracker_url = server.app[CTX].settings.rasa_tracker_url
    assert await _tracker_senders(tracker_url) == [str(seeded.other_id)]
    lines = [json.loads(line) for line in (outbox / "webchat.jsonl").read_text().splitlines()]
    assert [line["patient_id"] for line in lines] == [seeded.other_id]


async def test_a_patient_erases_their_data_from_the_portal(server, seeded, maria, outbox):
    async with maria.post("/api/portal/erase", json={"password": "errada"}) as response:
        assert response.status == 403
    assert (await _user(server, seeded.patient_id)).erased_at is None
    async with maria.post("/api/portal/erase", json={"password": PASSWORD}) as response:
        assert response.status == 200
    await _assert_erased(server, seeded, outbox)
    async with maria.get("/api/portal/me") as response:
        assert response.status == 401  # the session ended with the account
    assert await _count(server, AuditLog, AuditLog.action == AuditAction.ERASURE) == 1


async def test_an_admin_erases_a_patient_and_the_bot_starts_afresh(server, seeded, admin, outbox):
    async with admin.post(f"/api/admin/patients/{seeded.patient_id}/erase") as response:
        assert response.status == 200
    await _assert_erased(server, seeded, outbox)
    # The same visitor writes again: a new, unknown patient, with a tracker of its own.
    again = await patient_message(
        server.app[CTX].db, "oi", channel="webchat", user=seeded.external_id
    )
    assert again.message.patient_id not in (seeded.patient_id, seeded.other_id)


async def test_erasure_cancels_future_appointments_and_keeps_them(server, seeded, admin):
    async with admin.post(f"/api/admin/patients/{seeded.patient_id}/erase") as response:
        assert response.status == 200
    async with server.app[CTX].db.session() as session:
        appointment = await session.get_one(Appointment, seeded.appointment_id)
    assert appointment.status == "cancelada"


async def test_only_an_admin_erases_and_only_patients(server, seeded, admin):
    attendant = await logged_in(server, seeded.attendant.email, "senha-segura")
    async with attendant.post(f"/api/admin/patients/{seeded.patient_id}/erase") as response:
        assert response.status == 403
    await attendant.close()
    async with admin.post(f"/api/admin/patients/{seeded.attendant.id}/erase") as response:
        assert response.status == 404
    assert (await _user(server, seeded.patient_id)).erased_at is None


# --- Retention -------------------------------------------------------------------------------


async def _age(server, patient_id: int, days: int) -> None:
    """Everything of the patient happened `days` ago."""
    then = utcnow() - timedelta(days=days)
    async with server.app[CTX].db.session() as session:
        await session.execute(
            update(User).where(User.id == patient_id).values(created_at=then, updated_at=then)
        )
        await session.execute(
            update(Message).where(Message.patient_id == patient_id).values(created_at=then)
        )
        await session.execute(
            update(Appointment)
            .where(Appointment.patient_id == patient_id)
            .values(starts_at=then, ends_at=then + timedelta(minutes=30), updated_at=then)
        )


async def test_the_retention_job_erases_only_patients_inactive_past_the_period(
    server, seeded, outbox
):
    ctx = server.app[CTX]
    assert ctx.settings.retention_days == 1825  # the documented default
    await _age(server, seeded.patient_id, ctx.settings.retention_days + 1)
    await _age(server, seeded.other_id, ctx.settings.retention_days - 1)

    assert await erase_expired(ctx) == [seeded.patient_id]

    await _assert_erased(server, seeded, outbox)
    assert (await _user(server, seeded.other_id)).erased_at is None
    assert await erase_expired(ctx) == []  # nothing erased twice


async def test_the_retention_job_drops_expired_one_time_codes_from_the_outbox(
    server, seeded, outbox
):
    ctx = server.app[CTX]
    path = outbox / "webchat.jsonl"
    old = (utcnow() - timedelta(hours=1)).isoformat()
    with path.open("a") as file:
        file.write(
            json.dumps(
                {
                    "at": old,
                    "patient_id": seeded.other_id,
                    "sealed": True,
                    "text": "Seu código é 123456",
                }
            )
            + "\n"
        )
    await erase_expired(ctx)
    assert "123456" not in path.read_text()
    assert len(path.read_text().splitlines()) == 2  # the ordinary messages stay
