"""The platform's client of several assistant replicas (`BOT_URL` lists them): each patient
talks to one replica, the same from every process, and moves to the next only when their
replica refuses the connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.context import AssistantUnavailable
from messaging.assistant import AssistantClient
from tests.clinic import free_port

TOKEN = "replica-token"
SENDERS = web.AppKey("senders", list[str])


def _replica(name: str, status: int = 200) -> web.Application:
    """A stand-in connector that says which replica answered, and whom."""

    async def turn(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        body: dict[str, Any] = await request.json()
        app[SENDERS].append(body["sender"])
        if status != 200:
            return web.json_response({"error": "boom"}, status=status)
        return web.json_response({"messages": [{"text": name}]})

    app = web.Application()
    app[SENDERS] = []
    app.router.add_post("/webhooks/platform/turn", turn)
    return app


@pytest.fixture
async def replicas() -> AsyncIterator[list[TestServer]]:
    servers = [TestServer(_replica(name), host="127.0.0.1") for name in ("a", "b")]
    for server in servers:
        await server.start_server()
    yield servers
    for server in servers:
        await server.close()


def _message(patient_id: int) -> Any:
    return SimpleNamespace(
        id=patient_id * 10, channel="whatsapp", conversation_id=patient_id, payload=None
    )


def _base(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def _answer(client: AssistantClient, patient_id: int) -> str:
    return (await client.turn(patient_id, _message(patient_id), "oi"))[0].text


async def test_each_patient_sticks_to_one_replica_whichever_process_asks(replicas):
    urls = [_base(server) for server in replicas]
    first, second = AssistantClient(urls, TOKEN), AssistantClient(list(reversed(urls)), TOKEN)
    try:
        answered = {}
        for patient_id in range(1, 41):
            answered[patient_id] = await _answer(first, patient_id)
            assert await _answer(second, patient_id) == answered[patient_id]
        assert set(answered.values()) == {"a", "b"}  # both replicas take patients
    finally:
        await first.close()
        await second.close()


async def test_a_replica_that_refuses_connections_hands_its_patients_to_the_next(replicas):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = AssistantClient([down, _base(replicas[0])], TOKEN)
    try:
        patients = [p for p in range(1, 41) if client.replicas_for(p)[0].startswith(down)]
        assert patients
        for patient_id in patients:
            assert await _answer(client, patient_id) == "a"
    finally:
        await client.close()


async def test_a_replica_that_fails_a_turn_is_not_asked_again_by_another():
    """Once a replica had the request it may have run the turn: the failure goes to the
    sweep's replay instead of a second replica."""
    failing, healthy = TestServer(_replica("x", status=500)), TestServer(_replica("y"))
    await failing.start_server()
    await healthy.start_server()
    client = AssistantClient([_base(failing), _base(healthy)], TOKEN)
    try:
        patient_id = next(
            p for p in range(1, 100) if client.replicas_for(p)[0].startswith(_base(failing))
        )
        with pytest.raises(AssistantUnavailable):
            await _answer(client, patient_id)
        assert healthy.app[SENDERS] == []
    finally:
        await client.close()
        await failing.close()
        await healthy.close()


async def test_when_every_replica_refuses_the_turn_waits_for_later():
    client = AssistantClient([f"http://127.0.0.1:{free_port()}" for _ in range(2)], TOKEN)
    try:
        with pytest.raises(AssistantUnavailable):
            await _answer(client, 7)
    finally:
        await client.close()
