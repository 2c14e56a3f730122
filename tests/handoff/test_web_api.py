"""The staff API over real HTTP (aiohttp test server) on both databases."""

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from handoff import actions
from handoff.auth import hash_password
from handoff.web.app import create_app
from handoff.web.keys import CTX
from models import AuditLog, Presence, Role, User
from tests.factories import patient_message, staff
from tests.fakes import RecordingBotApi, RecordingSender

PASSWORD = "senha-segura"


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(settings))
    await server.start_server()
    ctx = server.app[CTX]
    # Keep the unit under test to the web app: deliveries and Rasa calls are recorded.
    ctx.senders = {"webchat": RecordingSender()}
    ctx.bot = RecordingBotApi()
    yield server
    await server.close()


async def _client(server: TestServer, user) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(
        base_url=str(server.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    async with http.post(
        "/api/login", json={"email": user.email, "password": PASSWORD}
    ) as response:
        assert response.status == 200
    return http


async def _assigned_conversation(ctx):
    recorded = await patient_message(ctx.db, "preciso de ajuda")
    await actions.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    return recorded.conversation.id


async def test_login_with_a_wrong_password_is_refused_in_portuguese(server):
    async with (
        aiohttp.ClientSession(base_url=str(server.make_url(""))) as http,
        http.post("/api/login", json={"email": "ana@x.com", "password": "x"}) as response,
    ):
        assert response.status == 401
        assert (await response.json())["error"] == "E-mail ou senha incorretos."


async def test_login_body_must_be_json(server):
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        async with http.post("/api/login", data="email=a") as response:
            assert response.status == 415
        async with http.post(
            "/api/login", data="{oops", headers={"Content-Type": "application/json"}
        ) as response:
            assert response.status == 400


async def test_patients_cannot_use_the_staff_api(server):
    ctx = server.app[CTX]
    recorded = await patient_message(ctx.db)
    async with ctx.db.session() as session:
        patient = await session.get(User, recorded.message.patient_id)
        patient.email = "paciente@exemplo.com"
        patient.password_hash = hash_password(PASSWORD)
    http = await _client(server, patient)
    try:
        async with http.get("/api/conversations") as response:
            assert response.status == 403
    finally:
        await http.close()


async def test_an_attendant_reads_only_their_own_conversations_and_every_read_is_audited(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, capacity=1)
    bruno = await staff(ctx.db, presence=Presence.OFFLINE)
    conversation_id = await _assigned_conversation(ctx)
    ana_http, bruno_http = await _client(server, ana), await _client(server, bruno)
    try:
        async with ana_http.get(f"/api/conversations/{conversation_id}") as response:
            assert response.status == 200
            assert (await response.json())["messages"][0]["text"] == "preciso de ajuda"
        async with bruno_http.get(f"/api/conversations/{conversation_id}") as response:
            assert response.status == 403
        async with bruno_http.post(
            f"/api/conversations/{conversation_id}/messages", json={"text": "oi"}
        ) as response:
            assert response.status == 403
        async with bruno_http.post(f"/api/conversations/{conversation_id}/resolve") as response:
            assert response.status == 403
        async with bruno_http.get("/api/conversations") as response:
            assert conversation_id not in [c["id"] for c in await response.json()]
    finally:
        await ana_http.close()
        await bruno_http.close()
    async with ctx.db.session() as session:
        reads = (await session.execute(select(AuditLog))).scalars().all()
    assert [(r.actor_id, r.action, r.conversation_id) for r in reads] == [
        (ana.id, "read_history", conversation_id)
    ]


async def test_a_manager_sees_and_acts_on_every_conversation(server):
    ctx = server.app[CTX]
    await staff(ctx.db, capacity=1)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    conversation_id = await _assigned_conversation(ctx)
    http = await _client(server, marta)
    try:
        async with http.get("/api/conversations") as response:
            assert conversation_id in [c["id"] for c in await response.json()]
        async with http.post(
            f"/api/conversations/{conversation_id}/messages", json={"text": "Oi, aqui é a gerente."}
        ) as response:
            assert response.status == 201
    finally:
        await http.close()
    assert ctx.senders["webchat"].texts[-1] == "Oi, aqui é a gerente."


async def test_reply_validation(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, capacity=1)
    conversation_id = await _assigned_conversation(ctx)
    http = await _client(server, ana)
    try:
        async with http.post(
            f"/api/conversations/{conversation_id}/messages", json={"text": "  "}
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "Escreva uma mensagem antes de enviar."
        async with http.post(
            f"/api/conversations/{conversation_id}/messages", json={"text": "x" * 5000}
        ) as response:
            assert response.status == 400
        async with http.post(
            f"/api/conversations/{conversation_id}/messages", json=["oi"]
        ) as response:
            assert response.status == 400
        async with http.post("/api/conversations/999999/messages", json={"text": "oi"}) as response:
            assert response.status == 404
    finally:
        await http.close()


async def test_internal_events_need_the_internal_token(server):
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        async with http.post("/internal/events", json={"type": "presence"}) as response:
            assert response.status == 403
        headers = {"Authorization": "Bearer internal-test-token"}
        async with http.post(
            "/internal/events", json={"type": "presence"}, headers=headers
        ) as response:
            assert response.status == 204


async def test_me_describes_the_logged_in_attendant(server):
    ana = await staff(server.app[CTX].db, presence=Presence.PAUSED, capacity=3)
    http = await _client(server, ana)
    try:
        async with http.get("/api/me") as response:
            assert await response.json() == {
                "id": ana.id,
                "name": ana.name,
                "email": ana.email,
                "role": "attendant",
                "presence": "pausa",
                "capacity": 3,
            }
    finally:
        await http.close()
