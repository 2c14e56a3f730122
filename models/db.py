"""Engine and session factory on SQLAlchemy's asyncio API, for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from models import sqlite_driver
from models.locks import Locks

# SQLite's async driver is aiosqlite with one thread hop per statement (models/sqlite_driver.py).
_ASYNC_DRIVERS = {
    "sqlite": f"sqlite+{sqlite_driver.DRIVER}",
    "postgresql": "postgresql+asyncpg",
}
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


async def upsert(session: AsyncSession, entity: Any) -> Any:
    """An INSERT into `entity` that can say what to do on a conflict (`on_conflict_do_*`):
    both databases the platform runs on have one, spelled by their dialect."""
    dialect = (await session.connection()).dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(entity)


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


# A pooled connection unused this long is checked before it is handed out.
PING_IDLE_AFTER = 10.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's pool_pre_ping checks every connection handed out, and on asyncpg a check is
    three round trips (BEGIN, `;`, ROLLBACK): more than the transaction that asked for the
    connection. Only connections that sat idle — across a database restart, say — are
    checked here; a busy pool's connections just proved themselves. One that still breaks
    mid-use makes SQLAlchemy invalidate the whole pool (its disconnect handling), and that one
    request fails (a webhook answers 503 and the provider retries)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_AFTER:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:  # whatever the driver raises for a dead connection
            raise DisconnectionError() from exc  # the pool retries with a new connection


class WriterTurns:
    """SQLite lets one transaction write at a time (every transaction here begins IMMEDIATE):
    this process's transactions wait for their turn here, in order, instead of polling in
    SQLite's busy handler (which wakes at growing intervals, lets latecomers in first and
    gives up after its timeout with `database is locked`). Urgent transactions — recording
    what a provider waits to have acknowledged — take the next turn before the others
    (routing, the bot's answers, staff pages), so a burst of webhooks is not acknowledged at
    the pace of the bot's work. Other processes on the same file still meet SQLite's lock;
    each brings at most one writer."""

    def __init__(self) -> None:
        self._busy = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._others: deque[asyncio.Future[None]] = deque()
        # The task holding the turn: a transaction it opens inside its own does not wait for
        # itself (it meets SQLite's busy handler, as without turns).
        self._holder: ContextVar[asyncio.Task[object] | None] = ContextVar(
            "sqlite_writer", default=None
        )

    @asynccontextmanager
    async def turn(self, *, urgent: bool) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and self._holder.get() is task:
            yield
            return
        await self._wait(urgent)
        token = self._holder.set(task)
        try:
            yield
        finally:
            self._holder.reset(token)
            self._next()

    async def _wait(self, urgent: bool) -> None:
        if not self._busy:
            self._busy = True
            return
        waiting = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._others).append(waiting)
        try:
            await waiting
        except asyncio.CancelledError:
            if waiting.done() and not waiting.cancelled():  # handed the turn as it was cancelled
                self._next()
            raise

    def _next(self) -> None:
        for queue in (self._urgent, self._others):
            while queue:
                waiting = queue.popleft()
                if not waiting.done():
                    waiting.set_result(None)
                    return
        self._busy = False


class Database:
    """One engine per process; `session()` yields a unit of work, and `locks` are held
    across every process on the same database (`models/locks.py`)."""

    def __init__(self, url: str, *, pool_size: int = 5, lock_connections: int = 10) -> None:
        self.url = url
        options: dict[str, Any] = {"future": True}
        if not is_sqlite(url):
            options.update(pool_size=pool_size, max_overflow=pool_size)
        self.engine: AsyncEngine = create_async_engine(async_url(url), **options)
        if is_sqlite(url):
            _prepare_sqlite(self.engine, url)
        else:
            _ping_when_idle(self.engine)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.locks = Locks(async_url(url), shared=not is_sqlite(url), connections=lock_connections)
        self._turns = WriterTurns() if is_sqlite(url) else None

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def session(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session committed on success and rolled back on any error. On SQLite it waits
        for this process's writer turn first (`WriterTurns`; `urgent` goes first)."""
        if self._turns is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._turns.turn(urgent=urgent), self._sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.locks.close()
        await self.engine.dispose()
