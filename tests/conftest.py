from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from handoff.context import Context
from models.db import Database
from settings import Settings
from tests.clinic import RunningClinic
from tests.databases import PostgresDatabases, SqliteDatabases, postgres_available, require_postgres
from tests.fakes import RecordingBotApi, RecordingBus, RecordingSender

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
def settings(database_url: str) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "INTERNAL_TOKEN": "internal-test-token",
            "SESSION_SECRET": "session-test-secret",
            "RASA_TOKEN": "rasa-test-token",
        }
    )


@pytest.fixture
async def ctx(settings: Settings, db: Database) -> AsyncIterator[Context]:
    context = Context(
        settings=settings,
        db=db,
        bus=RecordingBus(),
        senders={"webchat": RecordingSender(), "whatsapp": RecordingSender()},
        bot=RecordingBotApi(),
    )
    yield context


@pytest.fixture(scope="session")
def clinic(tmp_path_factory: pytest.TempPathFactory, sqlite_databases) -> Iterator[RunningClinic]:
    """The whole clinic running from the Procfile, once per test session."""
    folder = tmp_path_factory.mktemp("clinic")
    running = RunningClinic.prepare(folder, f"sqlite:///{folder / 'clinic.db'}")
    running.start()
    yield running
    running.stop()
