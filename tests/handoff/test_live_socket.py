"""The staff live socket lives only as long as the login it was opened with, and a
manager's or admin's supervision socket leaves an audit row."""

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import update

from handoff.transitions import queueing
from models import Role, User
from tests.factories import audit_entries, patient_message, staff
from tests.webapp import logged_in, web_server
from web import live
from web.keys import CTX, HUB

PASSWORD = "senha-segura"


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    async with web_server(settings) as server:  # no heartbeat within a test: 15 s apart
        yield server


async def _queue_a_conversation(ctx) -> int:
    """Every attendant's socket is told about a conversation entering the queue."""
    recorded = await patient_message(ctx.db, "alguém aí?")
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    return recorded.conversation.id


async def _closed_by_server(ws: aiohttp.ClientWebSocketResponse) -> int:
    """Read until the server closes the socket; the close code. The events the change itself
    caused (a deactivated attendant going offline, their patients requeued) may come first."""
    while (frame := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
        pass
    assert frame.type == aiohttp.WSMsgType.CLOSE, frame
    return frame.data


async def _next_conversation_event(ws: aiohttp.ClientWebSocketResponse) -> dict:
    while True:
        event = await ws.receive_json(timeout=5)
        if event["type"] == "conversation":
            return event


async def test_a_deactivated_attendant_is_disconnected_and_receives_no_more_events(server):
    ctx = server.app[CTX]
    admin, ana, bruno = (
        await staff(ctx.db, Role.ADMIN),
        await staff(ctx.db, capacity=1),
        await staff(ctx.db, capacity=1),
    )
    sessions = [await logged_in(server, user.email, PASSWORD) for user in (admin, ana, bruno)]
    admin_http, ana_http, bruno_http = sessions
    try:
        ana_ws = await ana_http.ws_connect("/api/ws")
        bruno_ws = await bruno_http.ws_connect("/api/ws")
        async with admin_http.patch(
            f"/api/admin/staff/{ana.id}", json={"is_active": False}
        ) as response:
            assert response.status == 200

        assert await _closed_by_server(ana_ws) == live.SESSION_ENDED
        conversation_id = await _queue_a_conversation(ctx)
        # Bruno, still active, hears of it; Ana's socket is gone from the hub.
        assert (await _next_conversation_event(bruno_ws))["conversation"]["id"] == conversation_id
        assert ana.id not in server.app[HUB].connected_user_ids()
        async with ana_http.get("/api/conversations") as response:
            assert response.status == 401
    finally:
        for http in sessions:
            await http.close()


async def test_logging_out_closes_the_sockets_of_that_login_only(server):
    ctx = server.app[CTX]
    ana = await staff(ctx.db, capacity=1)
    desk, phone = (
        await logged_in(server, ana.email, PASSWORD),
        await logged_in(server, ana.email, PASSWORD),
    )
    try:
        desk_ws, phone_ws = await desk.ws_connect("/api/ws"), await phone.ws_connect("/api/ws")
        async with desk.post("/api/logout") as response:
            assert response.status == 200

        assert await _closed_by_server(desk_ws) == live.SESSION_ENDED
        conversation_id = await _queue_a_conversation(ctx)
        assert (await _next_conversation_event(phone_ws))["conversation"]["id"] == conversation_id
    finally:
        await desk.close()
        await phone.close()


async def test_a_change_made_elsewhere_closes_the_socket_at_the_next_heartbeat(
    settings, monkeypatch
):
    """Another web process deactivated the account: this one finds out on its own."""
    monkeypatch.setattr(live, "PRESENCE_HEARTBEAT_SECONDS", 0.2)
    async with web_server(settings) as server:
        ctx = server.app[CTX]
        ana = await staff(ctx.db)
        http = await logged_in(server, ana.email, PASSWORD)
        try:
            ws = await http.ws_connect("/api/ws")
            async with ctx.db.session() as session:
                await session.execute(update(User).where(User.id == ana.id).values(is_active=False))

            assert await _closed_by_server(ws) == live.SESSION_ENDED
        finally:
            await http.close()


async def test_a_manager_demoted_to_attendant_stops_seeing_every_conversation(server):
    ctx = server.app[CTX]
    admin, marta = await staff(ctx.db, Role.ADMIN), await staff(ctx.db, Role.MANAGER)
    admin_http, marta_http = (
        await logged_in(server, admin.email, PASSWORD),
        await logged_in(server, marta.email, PASSWORD),
    )
    try:
        ws = await marta_http.ws_connect("/api/ws")
        async with admin_http.patch(
            f"/api/admin/staff/{marta.id}", json={"role": "attendant"}
        ) as response:
            assert response.status == 200

        assert await _closed_by_server(ws) == live.SESSION_ENDED
        # Her login still holds: a new socket carries the attendant's view.
        ws = await marta_http.ws_connect("/api/ws")
        subscriber = next(s for s in server.app[HUB].subscribers() if s.user_id == marta.id)
        assert subscriber.role == Role.ATTENDANT
        await ws.close()
    finally:
        await admin_http.close()
        await marta_http.close()


async def test_opening_the_supervision_socket_is_audited_for_managers_and_admins_only(server):
    ctx = server.app[CTX]
    users = [await staff(ctx.db, role) for role in (Role.ATTENDANT, Role.MANAGER, Role.ADMIN)]
    for user in users:
        http = await logged_in(server, user.email, PASSWORD)
        try:
            ws = await http.ws_connect("/api/ws")
            await ws.close()
        finally:
            await http.close()

    rows = await audit_entries(ctx.db)
    assert [(r.actor_id, r.action) for r in rows] == [
        (users[1].id, "live_supervision_opened"),
        (users[2].id, "live_supervision_opened"),
    ]
    assert all(r.ip for r in rows)
