"""SQLAlchemy's aiosqlite dialect with one trip to aiosqlite's thread per statement.

aiosqlite runs every call on the connection's worker thread, and each call is a round trip
from the event loop to that thread and back (60-75 µs here). SQLAlchemy's stock adapter
(`sqlalchemy/connectors/asyncio.py`) makes four per statement: create the cursor, execute,
fetch all the rows, close the cursor. Measured on the development machine, a `select 1`
costs 360-420 µs through the stock dialect and 63 µs as one call on the thread that does all
four; a patient's bot turn runs ~17 statements, so ~3.5 ms of its latency were hops. With
this dialect a `select 1` through `Database` costs 145-165 µs (stock: 355-375 µs, same run).

The cursor here does the four steps in one function on the worker thread and keeps what the
stock adapter would have read afterwards (rows, description, rowcount, lastrowid). Errors
come back through the stock adapter's mapping, so SQLAlchemy still raises its IntegrityError,
OperationalError ("database is locked"), etc. Server-side cursors (`stream()`), commit,
rollback and everything else on the connection are the stock adapter's.

`models.db.async_url` names this dialect for SQLite (`sqlite+aiosqlite_onehop`); the
`sqlite:///...` URLs users set are unchanged.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import TYPE_CHECKING, Any

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util.concurrency import await_

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import _DBAPICursorDescription

DRIVER = "aiosqlite_onehop"

# What one statement leaves behind: description, rows, rowcount, lastrowid.
_Outcome = tuple[Any, list[Any], int, int | None]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On aiosqlite's worker thread: the whole statement, cursor to close."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        description = cursor.description
        # As the stock adapter: rows are fetched after execute(), never after executemany().
        rows = cursor.fetchall() if description and not many else []
        # Read after fetchall(): an INSERT/UPDATE ... RETURNING counts its rows as they come.
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement is already finished when execute() returns."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # No aiosqlite cursor: the stock __init__ would spend a hop creating one.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._rows = collections.deque()
        self._arraysize = 1  # sqlite3's default
        self._description: _DBAPICursorDescription | None = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    def _statement(self, operation: Any, parameters: Any, many: bool) -> None:
        try:
            # `_conn` raises "no active connection" here, as in aiosqlite's own calls; the
            # stock mapping turns it (and "Connection closed") into an OperationalError.
            raw = self._connection._conn
            outcome: _Outcome = await_(
                self._connection._execute(_run, raw, operation, parameters, many)
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._statement(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._statement(operation, seq_of_parameters, many=True)

    @property
    def description(self) -> _DBAPICursorDescription | None:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        # sqlite3 says None before any INSERT; so did the stock adapter, typed int.
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing to close: the sqlite3 cursor was closed on the worker thread."""

    def close(self) -> None:
        self._rows.clear()


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        # The stock connect() opens the aiosqlite connection (and marks its thread daemon);
        # only the adapter around it changes.
        stock = super().connect(*arg, **kw)
        return OneHopConnection(self, stock._connection)


class SQLiteDialect_aiosqlite_onehop(SQLiteDialect_aiosqlite):
    driver = DRIVER
    supports_statement_cache = True  # SQLAlchemy asks every subclass to say so again

    @classmethod
    def import_dbapi(cls) -> OneHopDBAPI:
        return OneHopDBAPI(aiosqlite, sqlite3)


registry.register(f"sqlite.{DRIVER}", __name__, SQLiteDialect_aiosqlite_onehop.__name__)
