"""The staff search and the past conversations over real HTTP, on SQLite and PostgreSQL: a word
finds every message that has it whatever its accents and case, a patient is found by name,
phone, CPF or e-mail, an attendant finds only the patients they serve or have served, an
erased patient is found by nothing, and the closed conversations are listed by period,
channel and attendant and read as transcripts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import update

from accounts.erasure import erase_patient
from handoff.transitions import moves, queueing, resolution
from models import Conversation, ConversationLabel, Label, Presence, Role, User, utcnow
from tests.factories import audit_entries, patient_message, staff
from tests.webapp import logged_in, web_server
from web.keys import CTX

PASSWORD = "senha-segura"


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    async with web_server(settings) as server:
        yield server


async def _served(ctx, attendant: User, text: str, *, channel: str = "webchat") -> Conversation:
    """A patient who wrote `text`, was served by `attendant` and whose conversation was
    resolved."""
    recorded = await patient_message(ctx.db, text, channel=channel)
    conversation_id = recorded.conversation.id
    await queueing.request_handoff(ctx, conversation_id, reason="pedido_do_paciente")
    await moves.take(ctx, conversation_id, attendant)
    return await resolution.resolve(ctx, conversation_id, attendant)


async def _get(http, path: str, **query: str):
    async with http.get(path, params=query) as response:
        return response.status, await response.json()


async def _found_texts(http, q: str) -> list[str]:
    status, found = await _get(http, "/api/search", q=q)
    assert status == 200
    return sorted(m["text"] for m in found["messages"])


async def test_a_word_finds_its_messages_whatever_their_accents_and_case(server):
    ctx = server.app[CTX]
    manager = await staff(ctx.db, Role.MANAGER)
    for text in ("Quero marcar uma Cirurgia", "a cirúrgia foi adiada?", "bom dia"):
        await patient_message(ctx.db, text)
    http = await logged_in(server, manager.email, PASSWORD)
    try:
        expected = ["Quero marcar uma Cirurgia", "a cirúrgia foi adiada?"]
        assert await _found_texts(http, "cirurgia") == expected
        assert await _found_texts(http, "CIRÚRGIA") == expected
        assert await _found_texts(http, "cirurgia adiada") == ["a cirúrgia foi adiada?"]
        assert await _found_texts(http, "ortopedia") == []
    finally:
        await http.close()
    [entry, *_] = await audit_entries(ctx.db, "search")
    assert entry.actor_id == manager.id
    assert "cirurgia" not in str(entry.details).lower()  # what was typed is not kept


async def test_a_patient_is_found_by_name_phone_cpf_or_email(server):
    ctx = server.app[CTX]
    manager = await staff(ctx.db, Role.MANAGER)
    recorded = await patient_message(ctx.db, "oi")
    async with ctx.db.session() as session:
        await session.execute(
            update(User)
            .where(User.id == recorded.message.patient_id)
            .values(
                name="João da Conceição",
                phone_e164="+5511987654321",
                cpf="52998224725",
                email="joao.conceicao@exemplo.com",
            )
        )
    http = await logged_in(server, manager.email, PASSWORD)
    try:
        for typed in (
            "joao conceicao",
            "CONCEIÇ",
            "(11) 98765-4321",
            "529.982.247-25",
            "joao.conceicao@exemplo.com",
        ):
            status, found = await _get(http, "/api/search", q=typed)
            assert status == 200
            assert [p["id"] for p in found["patients"]] == [recorded.message.patient_id], typed
        [patient] = found["patients"]
        assert (patient["cpf"], patient["phone"]) == ("***.982.247-**", "••••••••••4321")
        status, found = await _get(http, "/api/search", q="Conceição Souza")
        assert found["patients"] == []
        status, refused = await _get(http, "/api/search", q="a")
        assert status == 400 and "ao menos 2" in refused["error"]
    finally:
        await http.close()


async def test_an_attendant_finds_only_the_patients_they_serve_or_have_served(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, presence=Presence.PAUSED)
    bruno = await staff(ctx.db, presence=Presence.PAUSED)
    hers = await _served(ctx, ana, "o resultado do exame saiu")
    his = await _served(ctx, bruno, "quando sai o exame de sangue?")
    queued = await patient_message(ctx.db, "preciso do exame urgente")
    await queueing.request_handoff(ctx, queued.conversation.id, reason="pedido_do_paciente")
    http = await logged_in(server, ana.email, PASSWORD)
    try:
        assert await _found_texts(http, "exame") == ["o resultado do exame saiu"]
        status, past = await _get(http, "/api/past-conversations")
        assert (status, [c["id"] for c in past]) == (200, [hers.id])
        status, _ = await _get(http, f"/api/transcripts/{his.id}")
        assert status == 403
        status, _ = await _get(http, f"/api/transcripts/{queued.conversation.id}")
        assert status == 403  # seen in the queue is not served
        status, transcript = await _get(http, f"/api/transcripts/{hers.id}")
        assert status == 200
        texts = [e["text"] for e in transcript["timeline"] if e["entry"] == "message"]
        assert "o resultado do exame saiu" in texts
    finally:
        await http.close()
    reads = await audit_entries(ctx.db, "read_history")
    assert [(r.actor_id, r.conversation_id, r.details["scope"]) for r in reads] == [
        (ana.id, hers.id, "transcript")
    ]


async def test_a_patient_found_comes_with_the_open_conversations_the_user_may_open(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, presence=Presence.PAUSED)
    recorded = await patient_message(ctx.db, "meu exame saiu?")
    patient_id = recorded.message.patient_id
    async with ctx.db.session() as session:
        await session.execute(update(User).where(User.id == patient_id).values(name="Rosa Amaral"))
    with_ana = recorded.conversation.id
    await queueing.request_handoff(ctx, with_ana, reason="pedido_do_paciente")
    await moves.take(ctx, with_ana, ana)

    async def open_ids(email: str) -> list[int]:
        http = await logged_in(server, email, PASSWORD)
        try:
            status, found = await _get(http, "/api/search", q="rosa amaral")
        finally:
            await http.close()
        assert status == 200
        return [[c["id"] for c in p["open_conversations"]] for p in found["patients"]]

    assert await open_ids(ana.email) == [[with_ana]]
    bruno = await staff(ctx.db)  # online, after the queue was served
    await moves.transfer(ctx, with_ana, ana, bruno.id)
    assert await open_ids(ana.email) == [[]]  # served once: still found, nothing to open
    assert await open_ids(bruno.email) == [[with_ana]]


async def test_an_erased_patient_is_not_found_by_old_words(server):
    ctx = server.app[CTX]
    manager = await staff(ctx.db, Role.MANAGER)
    recorded = await patient_message(ctx.db, "o laudo da biópsia chegou")
    patient_id = recorded.message.patient_id
    async with ctx.db.session() as session:
        await session.execute(update(User).where(User.id == patient_id).values(name="Helena Prado"))
    http = await logged_in(server, manager.email, PASSWORD)
    try:
        assert await _found_texts(http, "biopsia") == ["o laudo da biópsia chegou"]
        await erase_patient(ctx, patient_id, actor=manager, channel="admin")
        assert await _found_texts(http, "biopsia") == []
        status, found = await _get(http, "/api/search", q="helena prado")
        assert (status, found["patients"]) == (200, [])
    finally:
        await http.close()


async def test_past_conversations_are_filtered_by_period_channel_attendant_and_label(server):
    ctx = server.app[CTX]
    manager = await staff(ctx.db, Role.MANAGER)
    ana = await staff(ctx.db, presence=Presence.PAUSED)
    bruno = await staff(ctx.db, presence=Presence.PAUSED)
    old = await _served(ctx, ana, "remarcar consulta")
    recent = await _served(ctx, bruno, "segunda via do boleto")
    async with ctx.db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == old.id)
            .values(closed_at=utcnow() - timedelta(days=10))
        )
        label = Label(name="Convênio", colour="#0b7a75")
        session.add(label)
        await session.flush()
        session.add(ConversationLabel(conversation_id=old.id, label_id=label.id))
    today = utcnow().date()
    http = await logged_in(server, manager.email, PASSWORD)

    async def listed(**filters: str) -> list[int]:
        status, rows = await _get(http, "/api/past-conversations", **filters)
        assert status == 200
        return [row["id"] for row in rows]

    try:
        assert await listed() == [recent.id, old.id]
        assert await listed(since=str(today - timedelta(days=3))) == [recent.id]
        assert await listed(until=str(today - timedelta(days=3))) == [old.id]
        assert await listed(attendant_id=str(ana.id)) == [old.id]
        assert await listed(channel="webchat", attendant_id=str(bruno.id)) == [recent.id]
        assert await listed(channel="telegram") == []
        assert await listed(patient_id=str(old.patient_id)) == [old.id]
        assert await listed(label_id=str(label.id)) == [old.id]
        assert await listed(label_id=str(label.id), attendant_id=str(bruno.id)) == []
        status, refused = await _get(http, "/api/past-conversations", since="ontem")
        assert (status, refused["code"]) == (400, "search.error.invalid_filter")
    finally:
        await http.close()
