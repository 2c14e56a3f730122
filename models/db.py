"""Engine and session factory on SQLAlchemy's asyncio API, for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from models.locks import Locks

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}
# Rasa's tracker store (SQLAlchemy 1.4 in the assistant's runtime) knows only psycopg2.
_TRACKER_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg2"}


def _with_driver(url: str, drivers: dict[str, str]) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    # str() would print the password as *** (and every PostgreSQL with a password would fail).
    return parsed.set(drivername=drivers[backend]).render_as_string(hide_password=False)


def async_url(url: str) -> str:
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str) -> str:
    return _with_driver(url, _SYNC_DRIVERS)


def tracker_url(url: str) -> str:
    """The same database as Rasa's tracker store addresses it."""
    return _with_driver(url, _TRACKER_DRIVERS)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _prepare_sqlite(engine: AsyncEngine, url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level so that "begin" below decides how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Several processes share the file: take the write lock up front so that a
        # read-then-write transaction waits for its turn instead of failing mid-way.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One engine per process; `session()` yields a unit of work, and `locks` are held
    across every process on the same database (`models/locks.py`)."""

    def __init__(self, url: str, *, pool_size: int = 5, lock_connections: int = 10) -> None:
        self.url = url
        options: dict[str, Any] = {"future": True}
        if not is_sqlite(url):
            options.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(async_url(url), **options)
        if is_sqlite(url):
            _prepare_sqlite(self.engine, url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.locks = Locks(async_url(url), shared=not is_sqlite(url), connections=lock_connections)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session committed on success and rolled back on any error."""
        async with self._sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.locks.close()
        await self.engine.dispose()
