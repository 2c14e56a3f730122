"""Named locks that hold across every process sharing the database (`Database.locks`).

On PostgreSQL a lock is a session-level advisory lock (`pg_advisory_lock`) taken on a
connection of its own, held for as long as the work it guards runs and released at the end.
Nothing is written to a table: a process killed while it holds a lock loses its connection and
PostgreSQL releases the lock at once, so whatever the dead holder left undone is picked up by
the next process that takes it (no lease to expire, no clock to trust). On SQLite (the
embedded default, one process of each kind) the locks are in-process asyncio locks.

Either way, waiters of one process queue for a lock in the order they asked (asyncio locks are
fair) and wait there, not on a database connection: only one task per key and process ever
holds or waits for the advisory lock.

    async with db.locks.hold("patient", patient_id) as waited:
        ...  # one holder per (name, key) across all processes; `waited`: someone held it first

    async with db.locks.try_hold("job:queue distribution") as mine:
        if mine:
            ...  # nobody else is running it right now; otherwise skip this turn

Work that must not wait behind the process's other holders for a connection (the inbound
sweep, which replays what a dead replica left, behind the live turns filling the pool) takes
the same locks from a pool set apart for it: `db.locks.set_apart("inbound: sweep")`. The
in-process locks are shared, so a key still has one holder (or waiter) per process.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

# Advisory locks take two int4 keys: the lock's name (hashed) and the key within it.
_INT4 = 2**31


def lock_keys(name: str, key: int) -> tuple[int, int]:
    """The (classid, objid) pair PostgreSQL shows for this lock in `pg_locks`."""
    if not -_INT4 <= key < _INT4:
        raise ValueError(f"lock key {key} does not fit in 32 bits")
    namespace = zlib.crc32(name.encode())
    return namespace - 2**32 if namespace >= _INT4 else namespace, key


class _LocalLocks:
    """One asyncio lock per (name, key), dropped when nobody holds or waits for it (so the
    map does not grow with every patient ever seen)."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._users: Counter[tuple[str, int]] = Counter()

    @asynccontextmanager
    async def hold(self, name: str, key: int, *, wait: bool) -> AsyncIterator[bool | None]:
        """Yields whether another task held the lock first, or None without `wait` when it
        is held (then nothing is held)."""
        # No await before the lock is taken or queued for: tasks created in some order
        # queue in that order.
        lock = self._locks.setdefault((name, key), asyncio.Lock())
        self._users[name, key] += 1
        try:
            waited = lock.locked()
            if waited and not wait:
                yield None
                return
            async with lock:
                yield waited
        finally:
            self._users[name, key] -= 1
            if not self._users[name, key]:
                del self._users[name, key], self._locks[name, key]


class Locks:
    """The database's cross-process locks (see the module's docstring)."""

    def __init__(
        self,
        async_url: str,
        *,
        shared: bool,
        connections: int = 10,
        local: _LocalLocks | None = None,
    ) -> None:
        """`shared` when other processes may use the database at the same time (PostgreSQL);
        at most `connections` locks of this process are held (or waited for) at once, the
        others wait in this process for a free connection."""
        self._url = async_url
        self._shared = shared
        self._connections = connections
        self._local = local or _LocalLocks()
        self._engine: AsyncEngine | None = None
        self._apart: dict[str, Locks] = {}

    @property
    def within_this_process(self) -> bool:
        """Whether every holder of these locks is in this process (SQLite: one process of
        each kind), so no other process acts on what they guard."""
        return not self._shared

    def set_apart(self, purpose: str, connections: int = 2) -> Locks:
        """The same locks on a pool of `connections` of their own, one pool per `purpose`
        (made on first use): its holders never wait for a connection behind the holders and
        waiters of this pool. The in-process locks are shared with this pool's, so across
        both a key has one holder per process, and the advisory locks conflict as usual."""
        if purpose not in self._apart:
            self._apart[purpose] = Locks(
                self._url, shared=self._shared, connections=connections, local=self._local
            )
        return self._apart[purpose]

    def _pool(self) -> AsyncEngine:
        if self._engine is None:
            # A pool of its own: a held lock pins its connection for the whole of the work it
            # guards, which must never starve that work of the connections it runs on.
            # Autocommit: a lock holder never sits idle in a transaction.
            self._engine = create_async_engine(
                self._url,
                isolation_level="AUTOCOMMIT",
                pool_size=self._connections,
                max_overflow=0,
                pool_timeout=3600,
                pool_pre_ping=True,
            )
        return self._engine

    @asynccontextmanager
    async def hold(self, name: str, key: int = 0) -> AsyncIterator[bool]:
        """Hold the lock, waiting as long as it takes; yields whether another holder (of
        this process or another) had it first — what it did may have changed what the
        caller read before."""
        async with self._local.hold(name, key, wait=True) as waited:
            if not self._shared:
                yield bool(waited)
                return
            async with self._advisory(name, key, wait=True) as taken_at_once:
                yield bool(waited) or not taken_at_once

    @asynccontextmanager
    async def try_hold(self, name: str, key: int = 0) -> AsyncIterator[bool]:
        """Hold the lock if nobody does; yields False (holding nothing) when somebody does."""
        async with self._local.hold(name, key, wait=False) as waited:
            if waited is None:
                yield False
            elif not self._shared:
                yield True
            else:
                async with self._advisory(name, key, wait=False) as taken:
                    yield taken

    @asynccontextmanager
    async def _advisory(self, name: str, key: int, *, wait: bool) -> AsyncIterator[bool]:
        """Yields whether the advisory lock was free at once; without `wait`, holds nothing
        when it was not."""
        namespace, number = lock_keys(name, key)
        keys = {"ns": namespace, "key": number}
        async with self._pool().connect() as connection:
            settled = False  # the lock is known to be released (or was never taken)
            try:
                taken = await _scalar(connection, "SELECT pg_try_advisory_lock(:ns, :key)", keys)
                if not taken and not wait:
                    settled = True
                    yield False
                    return
                if not taken:
                    await _scalar(connection, "SELECT pg_advisory_lock(:ns, :key)", keys)
                try:
                    yield bool(taken)
                finally:
                    settled = await _unlock(connection, keys)
            finally:
                if not settled:
                    # Cancelled or failed mid-way (while waiting, or unlocking on a broken
                    # connection): whether the lock is held is unknown, so the connection is
                    # closed rather than returned to the pool, which releases what it held.
                    await asyncio.shield(_discard(connection))

    async def close(self) -> None:
        for apart in self._apart.values():
            await apart.close()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


async def _scalar(connection: AsyncConnection, statement: str, params: dict[str, Any]) -> Any:
    return (await connection.execute(text(statement), params)).scalar()


async def _unlock(connection: AsyncConnection, keys: dict[str, int]) -> bool:
    """False when the connection broke (the lock went with it, or goes when it is closed):
    the work done under the lock stands."""
    try:
        await _scalar(connection, "SELECT pg_advisory_unlock(:ns, :key)", keys)
    except Exception as exc:
        log.warning("a lock's connection broke while it was held (%s)", type(exc).__name__)
        return False
    return True


async def _discard(connection: AsyncConnection) -> None:
    try:
        await connection.invalidate()
    except Exception as exc:  # the connection is already gone: so is its lock
        log.debug("closing a lock connection failed (%s)", type(exc).__name__)
