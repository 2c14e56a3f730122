"""The triage rule over real HTTP, on both databases: an attendant looking at a queued
conversation sees that episode and its handoff reason, not the patient's earlier history nor
their appointments, until the conversation is theirs; a manager supervises everything."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from handoff.transitions import queueing
from models import Conversation, ConversationStatus, Presence, Role, User, utcnow
from scripts.demo_clinic import add_agenda
from tests.factories import audit_entries, booked, patient_message, staff
from tests.webapp import logged_in, web_server
from web.keys import CTX

PASSWORD = "senha-segura"


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    async with web_server(settings) as server:
        async with server.app[CTX].db.session() as session:
            add_agenda(session, [2026, 2027])
        yield server


async def _returning_patient_in_the_queue(ctx) -> tuple[int, int, int]:
    """A patient with an earlier, closed conversation and an appointment, now queued again:
    (patient id, queued conversation id, appointment id)."""
    earlier = await patient_message(ctx.db, "meu exame deu alterado", user="paciente-1")
    async with ctx.db.session() as session:
        old = await session.get_one(Conversation, earlier.conversation.id)
        old.status, old.closed_at = ConversationStatus.CLOSED, utcnow()
        patient = await session.get_one(User, earlier.message.patient_id)
        patient.email, patient.cpf = "helena@exemplo.com", "52998224725"
    appointment = await booked(ctx.db, patient)
    now = await patient_message(ctx.db, "quero falar com alguém", user="paciente-1")
    assert now.conversation.id != earlier.conversation.id
    await queueing.request_handoff(ctx, now.conversation.id, reason="pedido_do_paciente")
    return patient.id, now.conversation.id, appointment.id


async def _get(http, path):
    async with http.get(path) as response:
        return response.status, await response.json()


async def test_an_attendant_triaging_sees_the_episode_and_reason_until_the_conversation_is_theirs(
    server,
):
    ctx = server.app[CTX]
    patient_id, queued, appointment_id = await _returning_patient_in_the_queue(ctx)
    bruno = await staff(ctx.db, presence=Presence.PAUSED)  # not distributed to: it waits
    http = await logged_in(server, bruno.email, PASSWORD)
    try:
        status, detail = await _get(http, f"/api/conversations/{queued}")
        assert status == 200
        assert detail["scope"] == "episode"
        assert detail["conversation"]["handoff_reason"] == "pedido_do_paciente"
        texts = [m["text"] for m in detail["messages"]]
        assert "quero falar com alguém" in texts and "meu exame deu alterado" not in texts
        assert {m["conversation_id"] for m in detail["messages"]} == {queued}
        contacts = (detail["patient"]["email"], detail["patient"]["cpf"])
        assert contacts == (None, None)
        status, _ = await _get(http, f"/api/patients/{patient_id}/appointments")
        assert status == 403

        async with http.post(f"/api/conversations/{queued}/take") as response:
            assert response.status == 200

        status, detail = await _get(http, f"/api/conversations/{queued}")
        assert detail["scope"] == "history"
        assert "meu exame deu alterado" in [m["text"] for m in detail["messages"]]
        assert detail["patient"]["email"] == "helena@exemplo.com"
        status, listed = await _get(http, f"/api/patients/{patient_id}/appointments")
        assert (status, [a["id"] for a in listed]) == (200, [appointment_id])
    finally:
        await http.close()
    reads = await audit_entries(ctx.db, "read_history")
    assert [r.details["scope"] for r in reads] == ["episode", "history"]


async def test_a_manager_supervising_the_queue_sees_the_whole_history_and_is_audited(server):
    ctx = server.app[CTX]
    patient_id, queued, appointment_id = await _returning_patient_in_the_queue(ctx)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    http = await logged_in(server, marta.email, PASSWORD)
    try:
        status, detail = await _get(http, f"/api/conversations/{queued}")
        assert (status, detail["scope"]) == (200, "history")
        assert "meu exame deu alterado" in [m["text"] for m in detail["messages"]]
        status, listed = await _get(http, f"/api/patients/{patient_id}/appointments")
        assert (status, [a["id"] for a in listed]) == (200, [appointment_id])
    finally:
        await http.close()
    reads = await audit_entries(ctx.db, "read_history", "read_appointments")
    assert [(r.actor_id, r.action, r.patient_id) for r in reads] == [
        (marta.id, "read_history", patient_id),
        (marta.id, "read_appointments", patient_id),
    ]
