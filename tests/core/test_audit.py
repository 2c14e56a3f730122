"""The audit log on both databases: UPDATE and DELETE refused, tampering around the triggers
found by the hash chain at the entry it touched, and concurrent appends kept in one chain."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core import audit
from core.audit import AuditAction
from core.catalog import catalog
from models import Role
from tests.factories import staff


async def _entries(db, count: int) -> list[int]:
    ana = await staff(db, Role.ADMIN)
    ids = []
    for n in range(count):
        async with db.session() as session:
            entry = await audit.record(
                session, ana, AuditAction.READ_HISTORY, patient_id=n + 1, ip=f"203.0.113.{n}"
            )
            ids.append(entry.id)
    return ids


async def _verify(db) -> audit.ChainReport:
    async with db.session() as session:
        return await audit.verify_chain(session)


async def _drop_triggers(db) -> None:
    """What an attacker with the database's owner rights could do before editing the log."""
    async with db.session() as session:
        if db.is_sqlite:
            await session.execute(text("DROP TRIGGER audit_log_no_update"))
            await session.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            await session.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET ip = '198.51.100.1' WHERE id = :id",
        "DELETE FROM audit_log WHERE id = :id",
    ],
)
async def test_the_database_refuses_to_change_or_delete_an_audit_entry(db, statement):
    [first, _] = await _entries(db, 2)
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.session() as session:
            await session.execute(text(statement), {"id": first})
    async with db.session() as session:
        ip = (
            await session.execute(text("SELECT ip FROM audit_log WHERE id = :id"), {"id": first})
        ).scalar_one()
    assert ip == "203.0.113.0"
    assert (await _verify(db)).intact


async def test_an_untouched_chain_verifies(db):
    await _entries(db, 5)
    report = await _verify(db)
    assert (report.intact, report.checked, report.unchained) == (True, 5, 0)


async def test_an_entry_edited_around_the_trigger_is_found_where_it_was_edited(db):
    ids = await _entries(db, 5)
    await _drop_triggers(db)
    async with db.session() as session:
        await session.execute(
            text("UPDATE audit_log SET ip = '198.51.100.1' WHERE id = :id"), {"id": ids[2]}
        )
    report = await _verify(db)
    assert (report.intact, report.broken_id) == (False, ids[2])


async def test_an_entry_deleted_around_the_trigger_breaks_the_link_of_the_next(db):
    ids = await _entries(db, 5)
    await _drop_triggers(db)
    async with db.session() as session:
        await session.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": ids[1]})
    assert (await _verify(db)).broken_id == ids[2]


async def test_an_edited_entry_whose_hash_was_recomputed_breaks_the_next_link(db):
    ids = await _entries(db, 3)
    await _drop_triggers(db)
    async with db.session() as session:
        await session.execute(
            text("UPDATE audit_log SET entry_hash = :h WHERE id = :id"),
            {"h": "0" * 64, "id": ids[0]},
        )
    # The forged hash does not match the entry itself: found at the entry.
    assert (await _verify(db)).broken_id == ids[0]


async def test_concurrent_appends_form_one_chain(db):
    ana = await staff(db, Role.ADMIN)

    async def append(n: int) -> None:
        async with db.session() as session:
            await audit.record(session, ana, AuditAction.READ_AGENDA, n=n)
            await asyncio.sleep(0)  # let the others reach the chain's head meanwhile

    await asyncio.gather(*(append(n) for n in range(12)))
    report = await _verify(db)
    assert (report.intact, report.checked) == (True, 12)


def test_every_audit_action_has_a_portuguese_label():
    assert [a for a in AuditAction if f"audit.action.{a}" not in catalog()] == []
