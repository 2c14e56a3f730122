"""Locks held across processes (models/locks.py): two `Database` instances on one PostgreSQL
database stand for two processes; on SQLite (one process) the locks are in-process."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from models.db import Database
from models.locks import lock_keys


@pytest.fixture
async def other(database_url: str):
    """Another process on the same database (on SQLite, the same process)."""
    database = Database(database_url)
    yield database
    await database.dispose()


def peer(db: Database, other: Database) -> Database:
    return db if db.is_sqlite else other


async def test_one_holder_at_a_time_and_the_next_is_told_it_waited(db, other):
    order = []

    async def work(database: Database, name: str) -> None:
        async with database.locks.hold("job", 7) as waited:
            order.append((name, "in", waited))
            await asyncio.sleep(0.1)
            order.append((name, "out", waited))

    first = asyncio.create_task(work(db, "a"))
    await asyncio.sleep(0.05)
    await work(peer(db, other), "b")
    await first

    assert order == [("a", "in", False), ("a", "out", False), ("b", "in", True), ("b", "out", True)]


async def test_try_hold_skips_while_another_holds_and_takes_it_after(db, other):
    async with db.locks.try_hold("job") as mine:
        assert mine
        async with peer(db, other).locks.try_hold("job") as theirs:
            assert not theirs
        async with peer(db, other).locks.try_hold("another job") as theirs:
            assert theirs
    async with peer(db, other).locks.try_hold("job") as theirs:
        assert theirs


async def test_a_cancelled_waiter_leaves_nothing_held(db, other):
    async with db.locks.hold("patient", 1):
        waiter = asyncio.create_task(peer(db, other).locks.hold("patient", 1).__aenter__())
        await asyncio.sleep(0.1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with peer(db, other).locks.try_hold("patient", 1) as taken:
        assert taken


# Only PostgreSQL: on SQLite one process of each kind runs, nobody else could take over.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_holder_whose_connection_dies_releases_the_lock(db, other):
    namespace, key = lock_keys("patient", 2)
    async with db.locks.hold("patient", 2):
        async with other.session() as session:
            await session.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND granted AND classid = :classid AND objid = :objid"
                ),
                {"classid": namespace % 2**32, "objid": key},
            )
        async with other.locks.try_hold("patient", 2) as taken:
            assert taken
    # The dead holder's release failed quietly; the lock is free for anyone.
    async with db.locks.try_hold("patient", 2) as taken:
        assert taken


async def test_locks_set_apart_are_the_same_locks_on_connections_of_their_own(db, other):
    apart = db.locks.set_apart("sweep", connections=1)
    assert db.locks.set_apart("sweep") is apart
    async with db.locks.hold("patient", 3):
        async with apart.try_hold("patient", 3) as taken:
            assert not taken  # held in this process
        async with peer(db, other).locks.set_apart("sweep").try_hold("patient", 3) as taken:
            assert not taken  # held by another process
    async with apart.try_hold("patient", 3) as taken:
        assert taken
