"""The staff API over real HTTP (aiohttp test server) on both databases."""

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from handoff import presence
from handoff.transitions import queueing, reception, resolution, talking
from models import (
    AttendantAction,
    CannedResponse,
    Conversation,
    Message,
    Presence,
    Role,
)
from processes.web import create_app
from tests.factories import audit_entries, patient_message, staff
from tests.fakes import RecordingBot, RecordingSender
from tests.webapp import logged_in, patient_logged_in
from web.keys import CTX

PASSWORD = "senha-segura"


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(settings))
    await server.start_server()
    ctx = server.app[CTX]
    # Keep the unit under test to the web app: deliveries and Rasa calls are recorded.
    ctx.senders = {"webchat": RecordingSender()}
    ctx.bot = RecordingBot()
    yield server
    await server.close()


async def _client(server: TestServer, user) -> aiohttp.ClientSession:
    return await logged_in(server, user.email, PASSWORD)


async def _assigned_conversation(ctx):
    recorded = await patient_message(ctx.db, "preciso de ajuda")
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
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
    http = await patient_logged_in(server, PASSWORD)
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
    reads = await audit_entries(ctx.db, "read_history")
    assert [(r.actor_id, r.action, r.conversation_id) for r in reads] == [
        (ana.id, "read_history", conversation_id)
    ]


async def _status_of_read(http, conversation_id):
    async with http.get(f"/api/conversations/{conversation_id}") as response:
        return response.status


async def test_an_attendant_stops_reading_a_patient_once_resolved_or_transferred(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, capacity=2)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    resolved, transferred = await _assigned_conversation(ctx), await _assigned_conversation(ctx)
    bruno = await staff(ctx.db)
    ana_http, marta_http = await _client(server, ana), await _client(server, marta)
    try:
        async with ana_http.post(f"/api/conversations/{resolved}/resolve") as response:
            assert response.status == 200
        async with ana_http.post(
            f"/api/conversations/{transferred}/transfer", json={"attendant_id": bruno.id}
        ) as response:
            assert response.status == 200

        assert await _status_of_read(ana_http, resolved) == 403
        assert await _status_of_read(ana_http, transferred) == 403
        assert await _status_of_read(marta_http, resolved) == 200
    finally:
        await ana_http.close()
        await marta_http.close()


async def test_an_attendant_reads_a_queued_conversation_before_taking_it(server):
    ctx = server.app[CTX]
    await staff(ctx.db, capacity=1)
    await _assigned_conversation(ctx)  # fills the only online attendant
    queued = await _assigned_conversation(ctx)
    bruno = await staff(ctx.db, presence=Presence.PAUSED)
    http = await _client(server, bruno)
    try:
        assert await _status_of_read(http, queued) == 200
    finally:
        await http.close()
    reads = await audit_entries(ctx.db)
    assert [(r.actor_id, r.action, r.conversation_id) for r in reads] == [
        (bruno.id, "read_history", queued)
    ]


# Every route that reads or changes one conversation, with a valid body.
CONVERSATION_ROUTES = [
    ("GET", "", None),
    ("POST", "/messages", {"text": "oi"}),
    ("POST", "/notes", {"text": "nota"}),
    ("POST", "/take", None),
    ("POST", "/take-over", None),
    ("POST", "/transfer", {"attendant_id": "BRUNO"}),
    ("POST", "/reassign", {"attendant_id": "BRUNO"}),
    ("POST", "/priority", {"priority": "critical"}),
    ("POST", "/resolve", None),
    ("POST", "/actions", {"kind": "exams_delivered"}),
]


@pytest.mark.parametrize(("method", "suffix", "body"), CONVERSATION_ROUTES)
async def test_no_attendant_can_read_or_act_on_a_colleagues_conversation(
    server, method, suffix, body
):
    ctx = server.app[CTX]
    await staff(ctx.db, capacity=1)
    conversation_id = await _assigned_conversation(ctx)
    bruno = await staff(ctx.db)
    if body and body.get("attendant_id") == "BRUNO":
        body = {"attendant_id": bruno.id}
    async with ctx.db.session() as session:
        before = await session.get(Conversation, conversation_id)
        messages_before = len((await session.execute(select(Message))).scalars().all())
    http = await _client(server, bruno)
    try:
        async with http.request(
            method, f"/api/conversations/{conversation_id}{suffix}", json=body
        ) as response:
            assert response.status == 403
            assert (await response.json())["error"]
    finally:
        await http.close()
    async with ctx.db.session() as session:
        after = await session.get(Conversation, conversation_id)
        assert (after.version, after.assigned_attendant_id, after.priority, after.status) == (
            before.version,
            before.assigned_attendant_id,
            before.priority,
            before.status,
        )
        assert len((await session.execute(select(Message))).scalars().all()) == messages_before
        assert (await session.execute(select(AttendantAction))).first() is None
    assert await audit_entries(ctx.db) == []


async def test_the_attendant_list_shows_their_conversations_and_the_queue_with_what_is_waiting(
    server,
):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, capacity=1)
    mine = await _assigned_conversation(ctx)
    queued = await _assigned_conversation(ctx)
    http = await _client(server, ana)
    try:
        async with http.get("/api/conversations") as response:
            listed = {c["id"]: c for c in await response.json()}
    finally:
        await http.close()
    assert set(listed) == {mine, queued}
    assert listed[mine]["owner"] == "attendant"
    assert listed[queued]["owner"] == "queued"
    assert (listed[mine]["waiting"], listed[queued]["waiting"]) == (1, 1)


async def test_the_timeline_merges_messages_transitions_and_actions(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db)
    conversation_id = await _assigned_conversation(ctx)
    await talking.add_note(ctx, conversation_id, ana, "Ligar depois das 14h.")
    await reception.record_action(ctx, conversation_id, ana, "exams_delivered")
    http = await _client(server, ana)
    try:
        async with http.get(f"/api/conversations/{conversation_id}") as response:
            detail = await response.json()
    finally:
        await http.close()
    entries = [
        (e["entry"], e.get("kind") or e.get("author_kind"), e.get("internal", False))
        for e in detail["timeline"]
    ]
    assert entries == [
        ("message", "patient", False),
        ("change", "handoff", False),
        ("change", "assigned", False),
        ("message", "system", False),
        ("message", "attendant", True),
        ("action", "exams_delivered", False),
    ]
    assert detail["patient"]["channels"] == ["webchat"]


async def test_canned_responses_and_the_team_are_listed_for_staff(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, capacity=2)
    await _assigned_conversation(ctx)
    async with ctx.db.session() as session:
        session.add(CannedResponse(shortcut="bomdia", text="Bom dia! Como posso ajudar?"))
    http = await _client(server, ana)
    try:
        async with http.get("/api/canned-responses") as response:
            assert [c["shortcut"] for c in await response.json()] == ["bomdia"]
        async with http.get("/api/attendants") as response:
            team = await response.json()
    finally:
        await http.close()
    assert [(m["id"], m["presence"], m["load"], m["capacity"]) for m in team] == [
        (ana.id, "online", 1, 2)
    ]


async def test_transition_errors_are_explained_in_portuguese(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, capacity=1)
    conversation_id = await _assigned_conversation(ctx)
    bruno = await staff(ctx.db, presence=Presence.OFFLINE)
    http = await _client(server, ana)
    try:
        async with http.post(
            f"/api/conversations/{conversation_id}/transfer", json={"attendant_id": bruno.id}
        ) as response:
            assert response.status == 409
            assert (await response.json())["code"] == "error.attendant_unavailable"
        async with http.post(
            f"/api/conversations/{conversation_id}/messages",
            json={"text": "oi", "channel": "telegram"},
        ) as response:
            assert response.status == 409
            assert (await response.json())["error"] == "O paciente não tem esse canal vinculado."
    finally:
        await http.close()


async def test_an_unknown_priority_is_refused_with_the_choices_in_portuguese(server):
    ctx = server.app[CTX]
    await staff(ctx.db)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    conversation_id = await _assigned_conversation(ctx)
    http = await _client(server, marta)
    try:
        async with http.post(
            f"/api/conversations/{conversation_id}/priority", json={"priority": "urgente"}
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"] == (
                "Prioridade inválida. Escolha normal, alta ou crítica."
            )
    finally:
        await http.close()


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
            me = await response.json()
            assert {"kind": "exams_delivered", "appointment": False, "slot": False} in me.pop(
                "actions"
            )
            assert me == {
                "id": ana.id,
                "name": ana.name,
                "email": ana.email,
                "role": "attendant",
                "presence": "pausa",
                "capacity": 3,
                "manual_take": True,
            }
    finally:
        await http.close()


async def test_live_events_reach_only_those_allowed_to_see_them(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, capacity=1)
    bruno = await staff(ctx.db, presence=Presence.PAUSED)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    clients = {user: await _client(server, user) for user in (ana, bruno, marta)}
    sockets = {user: await http.ws_connect("/api/ws") for user, http in clients.items()}
    try:
        queued_first = await patient_message(ctx.db, "alguém aí?")
        await presence.set_presence(ctx, ana, Presence.PAUSED)
        await queueing.request_handoff(
            ctx, queued_first.conversation.id, reason="pedido_do_paciente"
        )
        conversation_id = queued_first.conversation.id
        await presence.set_presence(ctx, ana, Presence.ONLINE)  # Ana receives it from the queue
        await talking.add_note(ctx, conversation_id, marta, "Ana, atenção ao convênio.")
        await talking.reply(ctx, conversation_id, ana, "Oi, aqui é a Ana.")
        await talking.add_note(ctx, conversation_id, ana, "FIM")

        def is_end(frame):
            return frame["type"] == "message" and frame["message"]["text"] == "FIM"

        seen_by_ana = await asyncio.wait_for(_collect(sockets[ana], is_end), 5)
        seen_by_marta = await asyncio.wait_for(_collect(sockets[marta], is_end), 5)
        # Bruno saw the conversation while it was queued, then only that it left the queue.
        seen_by_bruno = await asyncio.wait_for(
            _collect(sockets[bruno], lambda f: f["type"] == "conversation_gone"), 5
        )
        await asyncio.sleep(0.3)
        later = []
        while True:
            try:
                later.append(await sockets[bruno].receive_json(timeout=0.2))
            except TimeoutError:
                break
    finally:
        for ws in sockets.values():
            await ws.close()
        for http in clients.values():
            await http.close()

    def texts(frames):  # a message is pushed again when its delivery state moves on
        return list(dict.fromkeys(f["message"]["text"] for f in frames if f["type"] == "message"))

    assert "Ana, atenção ao convênio." in texts(seen_by_ana)
    assert "Oi, aqui é a Ana." in texts(seen_by_ana)
    assert texts(seen_by_marta)[-3:] == [
        "Ana, atenção ao convênio.",
        "Oi, aqui é a Ana.",
        "FIM",
    ]
    assert [f["type"] for f in seen_by_bruno if f["type"] != "presence"] == [
        "conversation",
        "conversation_gone",
    ]
    assert all(f["type"] == "presence" for f in later)


async def _collect(ws, predicate):
    frames = []
    while True:
        frame = await ws.receive_json()
        frames.append(frame)
        if predicate(frame):
            return frames


async def test_managers_see_the_satisfaction_each_resolution_received(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    recorded = await patient_message(ctx.db, "oi", user="csat-visitor")
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    await resolution.resolve(ctx, recorded.conversation.id, ana)
    async with ctx.db.session() as session:
        (await session.get(Conversation, recorded.conversation.id)).csat_score = 5
    again = await patient_message(ctx.db, "voltei", user="csat-visitor")
    await queueing.request_handoff(ctx, again.conversation.id, reason="pedido_do_paciente")
    ana_http, marta_http = await _client(server, ana), await _client(server, marta)
    try:
        seen = {}
        for who, http in (("ana", ana_http), ("marta", marta_http)):
            async with http.get(f"/api/conversations/{again.conversation.id}") as response:
                timeline = (await response.json())["timeline"]
            seen[who] = [e.get("csat_score") for e in timeline if e.get("kind") == "resolved"]
    finally:
        await ana_http.close()
        await marta_http.close()
    assert seen == {"ana": [None], "marta": [5]}
