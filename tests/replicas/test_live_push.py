"""Production mode (PostgreSQL + Redis): two web replicas of one clinic, and a worker, push
to whichever replica a browser reached. Each replica is the real web app
(`processes.web.create_app`) on its own HTTP server, with the same settings."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
import redis
from aiohttp.test_utils import TestServer

from core.settings import Settings
from handoff.transitions import queueing
from models import DeliveryStatus, Message, Role
from processes.web import create_app
from processes.worker import build_context
from tests.channels.fake_provider import FakeProvider
from tests.channels.webhooks import channel_env, signed, text_message, webhook_path
from tests.clients import StaffClient, WidgetClient
from tests.clinic import free_port
from tests.databases import (
    IN_CI,
    TEST_REDIS_URL,
    PostgresDatabases,
    require_postgres,
    require_redis,
)
from tests.factories import patient_message, second_factor_optional, staff
from web import live
from web.keys import CTX

PASSWORD = "senha-segura"
PATIENT_PHONE = "5511987650002"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    """WhatsApp Cloud API stand-in: where the clinic's replies to the patient go."""
    fake = FakeProvider()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(
    postgres_databases: PostgresDatabases | None, provider: FakeProvider
) -> Iterator[Settings]:
    require_postgres()
    require_redis()
    assert postgres_databases is not None
    database_url = postgres_databases.create()
    whatsapp = {
        name: value
        for name, value in channel_env(provider.url, "", "").items()
        if name.startswith(("WHATSAPP_", "META_"))
    }
    yield Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": TEST_REDIS_URL,
            "INTERNAL_TOKEN": "internal-test-token",
            "SESSION_SECRET": "session-test-secret",
            "RASA_TOKEN": "rasa-test-token",
            "STAFF_HOURS": "",  # the reception is always open
            **whatsapp,
        }
    )
    postgres_databases.drop(database_url)


@asynccontextmanager
async def replica(settings: Settings) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        relay = server.app[CTX].relay
        assert relay is not None
        await asyncio.wait_for(relay.listening.wait(), 5)
        yield server
    finally:
        await server.close()


@pytest.fixture
async def replicas(settings: Settings) -> AsyncIterator[tuple[TestServer, TestServer]]:
    async with replica(settings) as a, replica(settings) as b:
        await second_factor_optional(a.app[CTX].db)
        yield a, b


def url_of(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def staff_on(server: TestServer, email: str) -> StaffClient:
    client = StaffClient(url_of(server))
    await client.login(email, PASSWORD)
    await client.listen()
    return client


async def nothing_more(client: StaffClient, message_id: int, seconds: float = 0.3) -> bool:
    """No further event about message `message_id` reaches `client` within `seconds`."""
    await asyncio.sleep(seconds)
    while not client.events.empty():
        event = client.events.get_nowait()
        if event["type"] == "message" and event["message"]["id"] == message_id:
            return False
    return True


def is_message(text: str):
    return lambda e: e["type"] == "message" and e["message"]["text"] == text


async def test_a_message_arriving_on_one_replica_reaches_staff_on_both_once(replicas, provider):
    a, b = replicas
    ctx = a.app[CTX]
    ana, marta = await staff(ctx.db), await staff(ctx.db, Role.MANAGER)
    first = await patient_message(ctx.db, "oi", channel="whatsapp", user=PATIENT_PHONE)
    await queueing.request_handoff(ctx, first.conversation.id, reason="pedido_do_paciente")
    attendant, manager = await staff_on(b, ana.email), await staff_on(a, marta.email)
    try:
        body, headers = signed("whatsapp", text_message("whatsapp", PATIENT_PHONE, "doutor?"))
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{url_of(a)}{webhook_path('whatsapp')}", data=body, headers=headers) as r,
        ):
            assert r.status == 200

        seen_on_b = await attendant.expect_event(is_message("doutor?"), timeout=5)
        seen_on_a = await manager.expect_event(is_message("doutor?"), timeout=5)
        assert seen_on_b["conversation"]["id"] == first.conversation.id
        message_id = seen_on_a["message"]["id"]
        # Replica A got its own event once: through Redis, not also straight from its bus.
        assert await nothing_more(manager, message_id)
        assert await nothing_more(attendant, message_id, seconds=0)
    finally:
        await attendant.close()
        await manager.close()


async def test_what_the_worker_does_reaches_staff_and_the_widget_on_a_web_replica(
    replicas, settings
):
    _a, b = replicas
    ana = await staff(b.app[CTX].db)
    attendant, visitor = (
        await staff_on(b, ana.email),
        WidgetClient(f"{url_of(b)}/webhooks/webchat/ws"),
    )
    worker = build_context(settings)
    try:
        welcome = await visitor.connect()
        visitor_id = welcome["token"].split(".")[0]
        first = await patient_message(worker.db, "oi", channel="webchat", user=visitor_id)
        # The worker's queue distribution assigns the conversation to Ana.
        await queueing.request_handoff(worker, first.conversation.id, reason="pedido_do_paciente")

        assigned = await attendant.expect_event(
            lambda e: e["type"] == "conversation" and e["conversation"]["owner"] == "attendant",
            timeout=5,
        )
        assert assigned["conversation"]["id"] == first.conversation.id
        told = await visitor.next_reply("system", timeout=5)
        assert "entrou na conversa" in told["text"]
    finally:
        await visitor.close()
        await attendant.close()
        await worker.close()


async def test_logging_out_on_one_replica_closes_the_socket_on_the_other_within_a_second(
    replicas,
):
    a, b = replicas
    ana = await staff(a.app[CTX].db)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            f"{url_of(a)}/api/login", json={"email": ana.email, "password": PASSWORD}
        ) as response:
            assert response.status == 200
        ws = await http.ws_connect(f"{url_of(b)}/api/ws")
        async with http.post(f"{url_of(a)}/api/logout") as response:
            assert response.status == 200

        closing = await ws.receive(timeout=1)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert closing.data == live.SESSION_ENDED


async def _queued_widget_visitor(ctx, visitor):
    """Connects the visitor, records their "oi" and queues the conversation for a person."""
    welcome = await visitor.connect()
    recorded = await patient_message(
        ctx.db, "oi", channel="webchat", user=welcome["token"].split(".")[0]
    )
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    return welcome, recorded


async def test_a_staff_reply_sent_through_one_replica_reaches_the_widget_on_the_other(replicas):
    a, b = replicas
    ctx = a.app[CTX]
    ana = await staff(ctx.db)
    visitor = WidgetClient(f"{url_of(b)}/webhooks/webchat/ws")
    attendant = StaffClient(url_of(a))
    try:
        _welcome, recorded = await _queued_widget_visitor(ctx, visitor)
        await visitor.next_reply("system", timeout=5)  # "Ana entrou na conversa"
        await attendant.login(ana.email, PASSWORD)

        status, _body = await attendant.request(
            "POST",
            f"/api/conversations/{recorded.conversation.id}/messages",
            {"text": "Bom dia! Em que posso ajudar?"},
        )

        assert status == 201
        reply = await visitor.next_reply("attendant", timeout=5)
        assert reply["text"] == "Bom dia! Em que posso ajudar?"
        assert [m["text"] for m in await visitor.replies_within(0.3)] == []  # exactly once
    finally:
        await visitor.close()
        await attendant.close()


async def test_deactivating_an_attendant_on_one_replica_closes_their_socket_on_the_other(
    replicas,
):
    a, b = replicas
    ctx = a.app[CTX]
    admin, ana = await staff(ctx.db, Role.ADMIN), await staff(ctx.db)
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as admin_http,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as ana_http,
    ):
        for http, user, server in ((admin_http, admin, a), (ana_http, ana, b)):
            async with http.post(
                f"{url_of(server)}/api/login", json={"email": user.email, "password": PASSWORD}
            ) as response:
                assert response.status == 200
        ws = await ana_http.ws_connect(f"{url_of(b)}/api/ws")
        async with admin_http.patch(
            f"{url_of(a)}/api/admin/staff/{ana.id}", json={"is_active": False}
        ) as response:
            assert response.status == 200

        # Going offline is announced first; then the socket is closed.
        while (frame := await ws.receive(timeout=1)).type == aiohttp.WSMsgType.TEXT:
            pass
        assert frame.type == aiohttp.WSMsgType.CLOSE
        assert frame.data == live.SESSION_ENDED


async def test_a_reply_to_a_visitor_who_left_waits_in_their_history(replicas):
    a, b = replicas
    ctx = a.app[CTX]
    ana = await staff(ctx.db)
    visitor = WidgetClient(f"{url_of(b)}/webhooks/webchat/ws")
    attendant = StaffClient(url_of(a))
    try:
        welcome, recorded = await _queued_widget_visitor(ctx, visitor)
        await visitor.close()
        await attendant.login(ana.email, PASSWORD)
        status, body = await attendant.request(
            "POST",
            f"/api/conversations/{recorded.conversation.id}/messages",
            {"text": "Ainda está aí?"},
        )
        assert status == 201
        async with ctx.db.session() as session:
            reply = await session.get_one(Message, body["id"])
        assert reply.delivery_status == DeliveryStatus.SENT  # not failed, not retried

        visitor = WidgetClient(f"{url_of(b)}/webhooks/webchat/ws")
        back = await visitor.connect(welcome["token"])
        assert [m["text"] for m in back["history"]][-1] == "Ainda está aí?"
    finally:
        await visitor.close()
        await attendant.close()


class PrivateRedis:
    """A Redis server of this test's own, so that it can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            (pytest.fail if IN_CI else pytest.skip)("redis-server is not installed")
        command = [server, "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        for _ in range(50):
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
            time.sleep(0.1)
        client.close()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)


async def test_after_redis_restarts_screens_reload_and_live_push_works_again(settings):
    redis_server = PrivateRedis()
    redis_server.start()
    try:
        private = dataclasses.replace(settings, redis_url=redis_server.url)
        async with (
            replica(private) as a,
            replica(private) as b,
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        ):
            ctx = a.app[CTX]
            await second_factor_optional(ctx.db)
            marta = await staff(ctx.db, Role.MANAGER)
            async with http.post(
                f"{url_of(b)}/api/login", json={"email": marta.email, "password": PASSWORD}
            ) as response:
                assert response.status == 200
            ws = await http.ws_connect(f"{url_of(b)}/api/ws")
            redis_server.stop()
            redis_server.start()

            # Events may have been missed meanwhile: the page is asked to reconnect (any
            # code but the session's end), and reconnecting reloads its state from the API.
            closing = await ws.receive(timeout=10)
            assert closing.type == aiohttp.WSMsgType.CLOSE
            assert closing.data == aiohttp.WSCloseCode.TRY_AGAIN_LATER
            ws = await http.ws_connect(f"{url_of(b)}/api/ws")
            recorded = await patient_message(ctx.db, "voltou?")
            await queueing.request_handoff(
                ctx, recorded.conversation.id, reason="pedido_do_paciente"
            )
            while (event := await ws.receive_json(timeout=5))["type"] != "conversation":
                pass
            assert event["conversation"]["id"] == recorded.conversation.id
            await ws.close()
    finally:
        redis_server.stop()
