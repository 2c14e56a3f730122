"""The in-process harness for channel tests: the platform's real webhook and widget routes
served by a real aiohttp server on a free port, the real channels pointed at the fake
provider, the test database (SQLite and PostgreSQL), and a stand-in for the assistant that
answers every message it receives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from channels.base import ProviderChannel
from channels.registry import build_senders, close_channels, enabled_channels
from channels.webchat import CHANNEL as WEBCHAT
from channels.webchat import Sockets
from core.context import Context
from core.settings import Settings
from handoff.transitions import listeners, talking
from messaging.inbound import Inbox
from models import ChannelIdentity, Message
from models.db import Database
from tests.channels.fake_provider import FakeProvider
from tests.channels.mail_servers import ImapServer, SmtpServer
from tests.channels.webhooks import PUBLIC_BASE_URL, channel_env, deliver
from tests.fakes import FakeAssistant, RecordingBot, RecordingBus
from web import webhooks
from web.keys import CTX, INBOX, SETTINGS, WIDGET_SOCKETS


@dataclass
class Served:
    url: str
    channel_name: str
    inbox: Inbox
    assistant: FakeAssistant
    ctx: Context
    server: Any = field(repr=False)

    @property
    def channel(self) -> ProviderChannel:
        return self.inbox.channels[self.channel_name]

    async def deliver(self, payload: Any, **kwargs: Any) -> tuple[int, str]:
        return await deliver(self.url, self.channel_name, payload, **kwargs)

    async def settle(self) -> None:
        """Wait for the routing the webhook left running in the background."""
        await self.inbox.drain()

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
    database_url: str,
    provider: FakeProvider,
    smtp_server: SmtpServer,
    imap_server: ImapServer,
    tmp_path: Path,
) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "INTERNAL_TOKEN": "internal-test-token",
            "SESSION_SECRET": "session-test-secret",
            "RASA_TOKEN": "rasa-test-token",
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "FILES_DIR": str(tmp_path / "files"),
            **channel_env(provider.url, smtp_server.url, imap_server.url),
        }
    )


@pytest.fixture
async def enabled(channel_settings: Settings) -> AsyncIterator[dict[str, ProviderChannel]]:
    channels = enabled_channels(channel_settings)
    yield channels
    await close_channels(channels)


@pytest.fixture
def widget_sockets() -> Sockets:
    return Sockets()


@pytest.fixture
async def channel_ctx(
    channel_settings: Settings,
    db: Database,
    tmp_path: Path,
    enabled: dict[str, ProviderChannel],
    widget_sockets: Sockets,
) -> AsyncIterator[Context]:
    ctx = Context(
        settings=channel_settings,
        db=db,
        bus=RecordingBus(),
        senders=build_senders(
            channel_settings, enabled, widget_sockets=widget_sockets, outbox=tmp_path
        ),
        bot=RecordingBot(),
    )
    listeners.listen(ctx)
    yield ctx


@pytest.fixture
async def serve(
    channel_ctx: Context,
    enabled: dict[str, ProviderChannel],
    widget_sockets: Sockets,
    provider: FakeProvider,
    smtp_server: SmtpServer,
    imap_server: ImapServer,
) -> AsyncIterator[Callable[[type[ProviderChannel] | str], Awaitable[Served]]]:
    """`await serve(WhatsAppChannel)` (or `serve("webchat")`): the webhook routes of every
    enabled channel on a fresh server, the named one at hand."""
    started: list[TestServer] = []

    async def start(channel: type[ProviderChannel] | str) -> Served:
        name = channel if isinstance(channel, str) else channel.name
        assert name == WEBCHAT or name in enabled, f"{name} is not enabled in the tests"
        assistant = FakeAssistant()
        inbox = Inbox(channel_ctx, assistant, enabled, talking.join_open_episode)  # type: ignore[arg-type]
        app = web.Application()
        app[SETTINGS] = channel_ctx.settings
        app[CTX] = channel_ctx
        app[INBOX] = inbox
        app[WIDGET_SOCKETS] = widget_sockets
        webhooks.setup(app)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        started.append(server)
        url = str(server.make_url("")).rstrip("/")
        return Served(url, name, inbox, assistant, channel_ctx, server)

    provider.reset()
    smtp_server.received.clear()
    imap_server.mails.clear()
    yield start
    for server in started:
        await server.close()
    provider.reset()
