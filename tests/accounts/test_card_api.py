"""The patient's card over real HTTP: who may read, edit and merge, the validation of what
staff type, and the audit log of every read and write."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from accounts import erasure, export
from accounts.auth import hash_password
from handoff.transitions.queueing import request_handoff
from messaging.identities import identity_for
from models import Conversation, ConversationLabel, Label, PatientProfile, Role, User, utcnow
from tests.factories import audit_entries, patient_message, second_factor_optional, staff
from tests.fakes import RecordingSender
from tests.webapp import logged_in, web_server
from web.keys import CTX

PASSWORD = "senha-segura"
PROVED_PHONE = "5511987654321"


@pytest.fixture
async def server(settings) -> AsyncIterator:
    async with web_server(settings) as server:
        await second_factor_optional(server.app[CTX].db)
        server.app[CTX].senders["whatsapp"] = RecordingSender()
        yield server


async def _whatsapp_patient(ctx, user: str = PROVED_PHONE, text: str = "oi") -> tuple[int, int]:
    """A patient who wrote on WhatsApp (their phone proved by the provider): ids of the
    patient and the conversation."""
    recorded = await patient_message(ctx.db, text, channel="whatsapp", user=user, phone=f"+{user}")
    return recorded.message.patient_id, recorded.conversation.id


async def _served_by(ctx, attendant: User, conversation_id: int) -> None:
    """The patient asks for a person and gets `attendant`, the only one online."""
    await request_handoff(ctx, conversation_id, reason="pedido_do_paciente")
    async with ctx.db.session() as session:
        conversation = await session.get_one(Conversation, conversation_id)
    assert conversation.assigned_attendant_id == attendant.id


async def test_an_attendant_reads_the_card_of_the_patient_they_serve_only(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, Role.ATTENDANT)
    served, conversation = await _whatsapp_patient(ctx)
    other, _ = await _whatsapp_patient(ctx, "5511912345678")
    await _served_by(ctx, ana, conversation)
    async with ctx.db.session() as session:
        label = Label(name="Exames", colour="#0b7a75")
        session.add(label)
        await session.flush()
        session.add(ConversationLabel(conversation_id=conversation, label_id=label.id))
    http = await logged_in(server, ana.email, PASSWORD)
    try:
        async with http.get(f"/api/patients/{served}/card") as response:
            assert response.status == 200
            shown = await response.json()
        async with http.get(f"/api/patients/{other}/card") as response:
            assert response.status == 403
            refused = await response.json()
    finally:
        await http.close()

    assert shown["phone"].endswith("4321") and "98765" not in shown["phone"]
    assert shown["phone_proved"] is True
    assert [c["channel"] for c in shown["channels"]] == ["whatsapp"]
    assert shown["label_ids"] == [label.id]
    assert refused["error"] == "Você só vê o cadastro de pacientes que está atendendo."
    [read] = await audit_entries(ctx.db, "read_patient_card")
    assert (read.actor_id, read.patient_id) == (ana.id, served)


async def test_staff_change_the_preferred_channel_and_the_audit_log_keeps_the_field(server):
    ctx = server.app[CTX]
    manager = await staff(ctx.db, Role.MANAGER)
    patient_id, _ = await _whatsapp_patient(ctx)  # WhatsApp preferred: where they wrote
    async with ctx.db.session() as session:
        await identity_for(session, patient_id, "webchat", "visitante-do-site")
    http = await logged_in(server, manager.email, PASSWORD)
    try:
        body = {"preferred_channel": "webchat", "notes": "Surda: prefere mensagens."}
        async with http.patch(f"/api/patients/{patient_id}", json=body) as response:
            assert response.status == 200, await response.text()
            edited = await response.json()
        async with http.patch(
            f"/api/patients/{patient_id}", json={"preferred_channel": "telegram"}
        ) as response:
            assert response.status == 400
            unreachable = await response.json()
    finally:
        await http.close()

    assert edited["changed"] == ["notes", "preferred_channel"]
    exported = await export.collect(ctx.db, patient_id)  # the patient's data, notes included
    assert exported["profile"]["staff_notes"] == "Surda: prefere mensagens."
    assert edited["card"]["preferred_channel"] == "webchat"
    assert unreachable["code"] == "error.channel_unreachable"
    [entry] = await audit_entries(ctx.db, "patient_updated")
    assert (entry.actor_id, entry.patient_id) == (manager.id, patient_id)
    assert entry.details == {"fields": ["notes", "preferred_channel"]}  # names, never values


async def test_a_bad_field_changes_nothing_and_a_new_phone_is_not_proved(server):
    ctx = server.app[CTX]
    manager = await staff(ctx.db, Role.MANAGER)
    patient_id, _ = await _whatsapp_patient(ctx)
    http = await logged_in(server, manager.email, PASSWORD)
    try:
        for body, code in [
            ({"name": "Maria Nova", "phone": "123"}, "error.invalid_phone"),
            ({"name": "Maria Nova", "cpf": "111.111.111-11"}, "error.invalid_cpf"),
            ({"name": "Maria Nova", "email": "maria@"}, "error.invalid_email"),
            ({"name": "Maria Nova", "cor": "azul"}, "error.bad_parameter"),
        ]:
            async with http.patch(f"/api/patients/{patient_id}", json=body) as response:
                assert response.status == 400, body
                assert (await response.json())["code"] == code
        async with http.patch(
            f"/api/patients/{patient_id}", json={"phone": "(21) 99876-5432"}
        ) as response:
            assert response.status == 200
            card = (await response.json())["card"]
    finally:
        await http.close()

    async with ctx.db.session() as session:
        patient = await session.get_one(User, patient_id)
        profile = await session.get_one(PatientProfile, patient_id)
    assert patient.name != "Maria Nova"
    assert patient.phone_e164 == "+5521998765432"
    assert profile.phone_match_key is None and card["phone_proved"] is False


async def test_the_email_of_a_patient_who_logs_in_is_theirs_to_change(server):
    ctx = server.app[CTX]
    manager = await staff(ctx.db, Role.MANAGER)
    patient_id, _ = await _whatsapp_patient(ctx)
    async with ctx.db.session() as session:
        patient = await session.get_one(User, patient_id)
        patient.email, patient.email_verified_at = "maria@exemplo.com", utcnow()
        patient.password_hash = hash_password(PASSWORD)
    http = await logged_in(server, manager.email, PASSWORD)
    try:
        async with http.patch(
            f"/api/patients/{patient_id}", json={"email": "outra@exemplo.com"}
        ) as response:
            assert response.status == 409
            assert (await response.json())["code"] == "card.error.email_is_login"
    finally:
        await http.close()


async def test_an_attendant_cannot_merge_and_a_merged_source_cannot_log_in(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, Role.ATTENDANT)
    source, conversation = await _whatsapp_patient(ctx)
    target, _ = await _whatsapp_patient(ctx, "5511912345678")
    await _served_by(ctx, ana, conversation)
    manager = await staff(ctx.db, Role.MANAGER)
    async with ctx.db.session() as session:
        for patient_id, email in (
            (source, "maria.antiga@exemplo.com"),
            (target, "maria@exemplo.com"),
        ):
            patient = await session.get_one(User, patient_id)
            patient.email, patient.email_verified_at = email, utcnow()
            patient.password_hash = hash_password(PASSWORD)
    body = {"source_id": source, "target_id": target, "confirm": True}

    attendant = await logged_in(server, ana.email, PASSWORD)
    try:
        async with attendant.post("/api/patients/merge", json=body) as response:
            assert response.status == 403
            assert (await response.json())["code"] == "card.error.managers_merge"
    finally:
        await attendant.close()
    supervisor = await logged_in(server, manager.email, PASSWORD)
    try:
        async with supervisor.post(
            "/api/patients/merge", json={**body, "confirm": False}
        ) as response:
            assert response.status == 400
        async with supervisor.post("/api/patients/merge", json=body) as response:
            assert response.status == 200, await response.text()
            merged = await response.json()
    finally:
        await supervisor.close()

    assert merged["login"] == "target_kept" and merged["kept_conversation_id"] == conversation
    login = {"email": "maria.antiga@exemplo.com", "password": PASSWORD}
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.make_url("/api/login"), json=login) as response,
    ):
        assert response.status == 401
    [entry] = await audit_entries(ctx.db, "patients_merged")
    assert (entry.actor_id, entry.patient_id) == (manager.id, target)


async def test_erasure_takes_the_staff_notes_with_the_rest(server):
    ctx = server.app[CTX]
    manager = await staff(ctx.db, Role.MANAGER)
    patient_id, _ = await _whatsapp_patient(ctx)
    async with ctx.db.session() as session:
        profile = await session.get_one(PatientProfile, patient_id)
        profile.notes = "Alérgica a dipirona."

    await erasure.erase_patient(ctx, patient_id, actor=manager, channel="staff")

    async with ctx.db.session() as session:
        assert (await session.get_one(PatientProfile, patient_id)).notes is None
