"""Forgetting a patient in the assistant's tracker store (Rasa's SQL `events` table, keyed
by sender id = patient id): a SQLite file beside the database, or the `rasa` schema of the
same PostgreSQL database (core.settings). The next turn of that sender starts a new
conversation, with no slot of the old one."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, delete, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from models.db import async_url, is_sqlite

RASA_TABLE = "events"
RASA_SCHEMA = "rasa"


def _events(schema: str | None) -> Table:
    """The one column of Rasa's table this needs."""
    return Table(RASA_TABLE, MetaData(), Column("sender_id", String(255)), schema=schema)


async def forget_senders(tracker_url: str, senders: Collection[int]) -> int:
    """Delete every tracker event of these patients; how many were deleted. A store Rasa
    never created (no file, no table) holds nothing to delete and is not created here."""
    if not senders:
        return 0
    schema = None if is_sqlite(tracker_url) else RASA_SCHEMA
    if schema is None:
        database = make_url(tracker_url).database
        if not database or not await asyncio.to_thread(Path(database).exists):
            return 0
    engine = create_async_engine(async_url(tracker_url))
    events = _events(schema)
    try:
        async with engine.begin() as connection:
            if not await connection.run_sync(_has_events, schema):
                return 0
            result = await connection.execute(
                delete(events).where(events.c.sender_id.in_([str(s) for s in senders]))
            )
            return result.rowcount
    finally:
        await engine.dispose()


def _has_events(connection: Connection, schema: str | None) -> bool:
    return inspect(connection).has_table(RASA_TABLE, schema=schema)
