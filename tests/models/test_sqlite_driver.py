"""SQLite's driver (models/sqlite_driver.py): one trip to aiosqlite's thread per statement, and
otherwise what SQLAlchemy's stock aiosqlite dialect does. The behaviour tests run on both
dialects, so what they expect is the stock dialect's."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from models import sqlite_driver
from models.db import Database, _prepare_sqlite

metadata = MetaData()
patients = Table(
    "patient",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("phone", String, unique=True, nullable=False),
    Column("name", String),
)


@pytest.fixture(params=["aiosqlite", sqlite_driver.DRIVER])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine prepared as `Database` prepares it (WAL, BEGIN IMMEDIATE), on the stock
    dialect and on ours."""
    url = f"sqlite+{request.param}:///{tmp_path / 'driver.db'}"
    engine = create_async_engine(url)
    _prepare_sqlite(engine, url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The calls made on aiosqlite's worker thread, by name, as they are made."""
    calls: list[str] = []
    stock = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await stock(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield calls


async def test_returning_rowcount_and_lastrowid(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        ana = (
            await conn.execute(
                insert(patients).values(phone="+5511900000001", name="Ana").returning(patients.c.id)
            )
        ).scalar_one()
        bia = await conn.exec_driver_sql(
            "INSERT INTO patient (phone, name) VALUES (?, ?)", ("+5511900000002", "Bia")
        )
        assert bia.lastrowid == ana + 1

        renamed = await conn.execute(
            update(patients)
            .where(patients.c.id == ana)
            .values(name="Ana Maria")
            .returning(patients.c.name)
        )
        assert renamed.all() == [("Ana Maria",)]
        assert (await conn.execute(update(patients).values(name="x"))).rowcount == 2
        assert (await conn.execute(delete(patients).where(patients.c.id == -1))).rowcount == 0
        gone = await conn.execute(
            delete(patients).where(patients.c.id == ana).returning(patients.c.phone)
        )
        assert gone.scalar_one() == "+5511900000001"


async def test_a_duplicate_key_raises_integrity_error_and_rolls_back(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(patients).values(phone="+5511900000001"))

    with pytest.raises(IntegrityError) as raised:
        async with engine.begin() as conn:
            await conn.execute(insert(patients).values(phone="+5511900000002"))
            await conn.execute(insert(patients).values(phone="+5511900000001"))
    assert isinstance(raised.value.orig, sqlite3.IntegrityError)

    async with engine.begin() as conn:  # the connection is usable again, the transaction undone
        phones = (await conn.execute(select(patients.c.phone))).scalars().all()
    assert phones == ["+5511900000001"]


async def test_executemany(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        result = await conn.execute(
            text("INSERT INTO patient (phone) VALUES (:phone)"),
            [{"phone": f"+55119000000{i:02}"} for i in range(5)],
        )
        assert result.rowcount == 5
        assert (await conn.execute(select(patients.c.id))).scalars().all() == [1, 2, 3, 4, 5]
        with pytest.raises(IntegrityError):
            await conn.execute(
                text("INSERT INTO patient (phone) VALUES (:phone)"),
                [{"phone": "+5511999999999"}, {"phone": "+5511900000000"}],
            )


async def test_select_with_no_rows_keeps_its_columns(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT id, phone AS telefone FROM patient WHERE phone = :phone"),
            {"phone": "none"},
        )
        assert list(result.keys()) == ["id", "telefone"]
        assert result.all() == []
        assert (await conn.execute(select(patients).where(patients.c.id == 1))).first() is None
        assert (await conn.execute(text("SELECT max(id) FROM patient"))).scalar() is None


async def test_text_queries_read_by_column_name(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO patient (phone, name) VALUES ('1', 'Ana'), ('2', 'Bia')")
        )
        rows = (
            await conn.execute(text("SELECT name AS nome, phone FROM patient ORDER BY name"))
        ).mappings()
        assert [dict(row) for row in rows] == [
            {"nome": "Ana", "phone": "1"},
            {"nome": "Bia", "phone": "2"},
        ]
        journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        assert journal == "wal"  # set by the connect listener, through the same cursor


async def test_streaming_uses_a_server_side_cursor(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(patients), [{"phone": str(i)} for i in range(30)])
    async with engine.connect() as conn:
        result = await conn.stream(select(patients.c.phone).order_by(patients.c.id))
        phones = [phone async for phone in result.scalars()]
    assert phones == [str(i) for i in range(30)]


async def test_a_locked_database_raises_operational_error(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    impatient = create_async_engine(engine.url)  # without the busy timeout `Database` sets
    holder = sqlite3.connect(tmp_path / "driver.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        async with impatient.connect() as conn:
            await conn.exec_driver_sql("PRAGMA busy_timeout=0")
            with pytest.raises(OperationalError, match="database is locked"):
                await conn.execute(insert(patients).values(phone="1"))
    finally:
        holder.close()
        await impatient.dispose()


async def test_a_closed_connection_raises_operational_error(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None
        await raw.driver_connection.close()
        with pytest.raises(OperationalError):
            await conn.execute(text("SELECT 1"))
    async with engine.connect() as conn:  # the pool replaced the dead connection
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


async def test_each_statement_is_one_hop_to_the_worker_thread(
    tmp_path: Path, hops: list[str]
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'hops.db'}")
    try:
        assert db.engine.dialect.driver == sqlite_driver.DRIVER
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with db.session() as session:
            hops.clear()
            await session.execute(insert(patients).values(phone="1").returning(patients.c.id))
            await session.execute(
                text("INSERT INTO patient (phone) VALUES (:p)"), [{"p": "2"}, {"p": "3"}]
            )
            await session.execute(update(patients).values(name="x"))
            await session.execute(select(patients).where(patients.c.id == -1))
            rows = (
                (await session.execute(select(patients.c.phone).order_by(patients.c.id)))
                .scalars()
                .all()
            )
            # The session's transaction starts on its first statement: BEGIN IMMEDIATE, one hop.
            assert hops == ["_run"] * (1 + 5)
        assert rows == ["1", "2", "3"]
    finally:
        await db.dispose()
