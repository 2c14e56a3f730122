"""On SQLite one transaction writes at a time: this process's transactions take turns, and
recording what a provider waits for goes before background work."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from models.db import Database


async def test_recording_takes_the_next_turn_before_background_work(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'turns.db'}")
    order: list[str] = []
    try:
        async with db.session() as session:
            await session.execute(text("CREATE TABLE log (what TEXT)"))

        async def write(what: str, *, urgent: bool) -> None:
            async with db.session(urgent=urgent) as session:
                await session.execute(text("INSERT INTO log VALUES (:what)"), {"what": what})
                order.append(what)

        async with db.session() as session:  # a background transaction holds the turn
            waiting = [
                asyncio.create_task(write("routing", urgent=False)),
                asyncio.create_task(write("webhook 1", urgent=True)),
                asyncio.create_task(write("webhook 2", urgent=True)),
            ]
            await asyncio.sleep(0.05)  # all three queued behind it
            await session.execute(text("INSERT INTO log VALUES ('first')"))
            order.append("first")
        await asyncio.gather(*waiting)

        assert order == ["first", "webhook 1", "webhook 2", "routing"]
        async with db.session() as session:
            rows = (await session.execute(text("SELECT count(*) FROM log"))).scalar_one()
        assert rows == 4  # nobody failed with "database is locked"
    finally:
        await db.dispose()
