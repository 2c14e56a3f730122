"""The in-process harness for connector tests: the real connector blueprint served by a real
Sanic server on a free port, the real Senders pointed at the fake provider, the test database
(SQLite and PostgreSQL), and a stand-in for Rasa that answers every message it receives."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage
from sanic import Sanic
from sqlalchemy import select

from bot.channels.base import WebhookInput
from bot.channels.registry import build_senders
from handoff.context import Context
from models import ChannelIdentity, Message
from models.db import Database
from settings import Settings
from tests.channels.fake_provider import FakeProvider
from tests.channels.mail_servers import ImapServer, SmtpServer
from tests.channels.webhooks import PUBLIC_BASE_URL, channel_env, deliver
from tests.clinic import free_port
from tests.fakes import RecordingBotApi, RecordingBus


class FakeRasa:
    """Stands in for Rasa's `on_new_message`: records what reached the bot and answers
    "eco: <text>" (with `buttons`, if set) through the message's output channel, as Rasa's
    bot replies do."""

    def __init__(self) -> None:
        self.received: list[UserMessage] = []
        self.buttons: list[dict[str, str]] = []
        self.delay = 0.0  # seconds the bot "thinks" before it has understood the message
        self.down = 0  # how many of the next messages fail, as when Rasa is unreachable

    async def __call__(self, message: UserMessage) -> None:
        await asyncio.sleep(self.delay)
        if self.down:
            self.down -= 1
            raise ConnectionError("Rasa is down")
        self.received.append(message)
        await message.output_channel.send_response(
            message.sender_id, {"text": f"eco: {message.text}", "buttons": self.buttons}
        )

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.received]


@dataclass
class Served:
    url: str
    connector: WebhookInput
    rasa: FakeRasa
    ctx: Context
    server: Any = field(repr=False)

    async def deliver(self, payload: Any, **kwargs: Any) -> tuple[int, str]:
        return await deliver(self.url, self.connector.name(), payload, **kwargs)

    async def settle(self) -> None:
        """Wait for the routing the webhook left running in the background."""
        await self.connector.drain()

    async def age_window(self, *, hours: float) -> None:
        """Make every identity's last message `hours` older (messaging windows)."""
        async with self.ctx.db.session() as session:
            for identity in (await session.execute(select(ChannelIdentity))).scalars():
                identity.last_inbound_at -= timedelta(hours=hours)

    async def messages(self) -> list[Message]:
        async with self.ctx.db.session() as session:
            query = select(Message).order_by(Message.id)
            return (await session.execute(query)).scalars().all()


@pytest.fixture
def channel_settings(
    database_url: str, provider: FakeProvider, smtp_server: SmtpServer, imap_server: ImapServer
) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "INTERNAL_TOKEN": "internal-test-token",
            "SESSION_SECRET": "session-test-secret",
            "RASA_TOKEN": "rasa-test-token",
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            **channel_env(provider.url, smtp_server.url, imap_server.url),
        }
    )


@pytest.fixture
async def channel_ctx(
    channel_settings: Settings, db: Database, tmp_path: Path
) -> AsyncIterator[Context]:
    ctx: Context

    def current() -> Context:
        return ctx

    ctx = Context(
        settings=channel_settings,
        db=db,
        bus=RecordingBus(),
        senders=build_senders(
            channel_settings, in_bot_process=True, ctx_factory=current, outbox=tmp_path
        ),
        bot=RecordingBotApi(),
    )
    yield ctx


@pytest.fixture
async def serve(
    channel_ctx: Context, provider: FakeProvider, smtp_server: SmtpServer, imap_server: ImapServer
) -> AsyncIterator[Callable[[type[WebhookInput]], Awaitable[Served]]]:
    Sanic.test_mode = True  # lets several apps start in one process
    started: list[Any] = []

    async def start(connector_class: type[WebhookInput]) -> Served:
        connector = connector_class(channel_ctx)
        rasa = FakeRasa()
        app = Sanic(f"test_{uuid.uuid4().hex}")
        app.config.ACCESS_LOG = False
        app.blueprint(connector.blueprint(rasa))
        port = free_port()
        server = await app.create_server(
            host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
        )
        await server.startup()
        await server.after_start()
        started.append(server)
        return Served(f"http://127.0.0.1:{port}", connector, rasa, channel_ctx, server)

    provider.reset()
    smtp_server.received.clear()
    imap_server.mails.clear()
    yield start
    for server in started:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
    provider.reset()
