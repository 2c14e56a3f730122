from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core.context import Context
from core.settings import Settings
from handoff.transitions import listeners
from models.db import Database
from tests.channels.fake_provider import FakeProvider
from tests.channels.mail_servers import ImapServer, SmtpServer
from tests.channels.webhooks import channel_env
from tests.clinic import RunningClinic
from tests.databases import PostgresDatabases, SqliteDatabases, postgres_available, require_postgres
from tests.fakes import RecordingBot, RecordingBus, RecordingSender

if TYPE_CHECKING:
    from tests.s3 import S3Server

os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    databases = SqliteDatabases(tmp_path_factory.mktemp("sqlite"))
    databases.prepare_template()
    return databases


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases | None]:
    if postgres_available() is not None:
        yield None
        return
    databases = PostgresDatabases()
    databases.prepare_template()
    yield databases
    databases.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, sqlite_databases, postgres_databases
) -> Iterator[str]:
    """A fresh, migrated database on each backend."""
    if request.param == "postgresql":
        require_postgres()
        databases = postgres_databases
    else:
        databases = sqlite_databases
    url = databases.create()
    yield url
    databases.drop(url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "INTERNAL_TOKEN": "internal-test-token",
            "SESSION_SECRET": "session-test-secret",
            "RASA_TOKEN": "rasa-test-token",
            "FILES_DIR": str(tmp_path / "files"),
        }
    )


@pytest.fixture
async def ctx(settings: Settings, db: Database) -> AsyncIterator[Context]:
    context = Context(
        settings=settings,
        db=db,
        bus=RecordingBus(),
        senders={"webchat": RecordingSender(), "whatsapp": RecordingSender()},
        bot=RecordingBot(),
    )
    listeners.listen(context)
    yield context


@pytest.fixture(scope="session")
def provider() -> Iterator[FakeProvider]:
    """The fake provider API (Graph, Twilio, Telegram) every channel sends to in tests."""
    server = FakeProvider()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A local S3-compatible service (moto) for the S3 file store; moto is imported only by
    the tests that use it."""
    from tests.s3 import S3Server

    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def imap_server() -> Iterator[ImapServer]:
    server = ImapServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clinic(
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_databases,
    provider: FakeProvider,
    smtp_server: SmtpServer,
    imap_server: ImapServer,
) -> Iterator[RunningClinic]:
    """The whole clinic running from the Procfile, once per test session, with every
    channel enabled against the local fake provider and mail servers."""
    folder = tmp_path_factory.mktemp("clinic")
    running = RunningClinic.prepare(
        folder,
        f"sqlite:///{folder / 'clinic.db'}",
        extra_env=channel_env(provider.url, smtp_server.url, imap_server.url),
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def live_db(clinic: RunningClinic) -> AsyncIterator[Database]:
    """The running clinic's database, to arrange what a test needs and check what happened."""
    database = Database(clinic.settings.database_url)
    yield database
    await database.dispose()
