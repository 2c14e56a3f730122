"""Online, pausa, offline, and the workspace's heartbeat (handoff.presence)."""

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import update

from core.catalog import t
from handoff import presence
from models import AttendantProfile, Owner, Presence, utcnow
from tests.factories import staff
from tests.handoff.steps import handed_off, read_conversation


async def test_going_offline_returns_conversations_to_the_queue_ahead_of_newer_ones(ctx):
    ana = await staff(ctx.db, capacity=1)
    held = await handed_off(ctx)
    newer = await handed_off(ctx)
    original_queued_at = (await read_conversation(ctx.db, held)).queued_at
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)

    await presence.set_presence(ctx, ana, Presence.OFFLINE)
    await presence.set_presence(ctx, bruno, Presence.ONLINE)

    conversation = await read_conversation(ctx.db, held)
    assert conversation.assigned_attendant_id == bruno.id
    assert conversation.queued_at == original_queued_at
    assert (await read_conversation(ctx.db, newer)).owner == Owner.QUEUED


async def test_a_patient_whose_attendant_left_is_told_their_new_place(ctx):
    ana = await staff(ctx.db, capacity=1)
    held = await handed_off(ctx)

    await presence.set_presence(ctx, ana, Presence.OFFLINE)

    assert (await read_conversation(ctx.db, held)).owner == Owner.QUEUED
    assert ctx.senders["webchat"].texts[-1].startswith(t("patient.queued", position=1))


async def test_pausa_keeps_current_conversations_but_receives_no_new_ones(ctx):
    ana = await staff(ctx.db)
    held = await handed_off(ctx)

    await presence.set_presence(ctx, ana, Presence.PAUSED)
    newer = await handed_off(ctx)

    assert (await read_conversation(ctx.db, held)).assigned_attendant_id == ana.id
    assert (await read_conversation(ctx.db, newer)).owner == Owner.QUEUED


async def test_presence_change_is_published(ctx):
    ana = await staff(ctx.db, presence=Presence.OFFLINE)

    await presence.set_presence(ctx, ana, Presence.PAUSED)

    async with ctx.db.session() as session:
        assert (await session.get(AttendantProfile, ana.id)).presence == Presence.PAUSED
    assert ctx.bus.of_type("presence") == [
        {"type": "presence", "attendant_id": ana.id, "presence": "pausa"}
    ]


async def test_an_attendant_who_closed_the_workspace_goes_offline_after_the_timeout(ctx):
    ctx.settings = replace(ctx.settings, presence_timeout_seconds=90)
    ana = await staff(ctx.db)
    bruno = await staff(ctx.db, presence=Presence.OFFLINE)
    held = await handed_off(ctx)
    long_ago = utcnow() - timedelta(seconds=91)
    async with ctx.db.session() as session:
        await session.execute(
            update(AttendantProfile)
            .where(AttendantProfile.user_id == ana.id)
            .values(last_seen_at=long_ago, presence_changed_at=long_ago)
        )

    assert await presence.expire_presence(ctx) == [ana.id]
    await presence.heartbeat(ctx, [ana.id])  # a heartbeat does not bring her back online
    await presence.set_presence(ctx, bruno, Presence.ONLINE)

    async with ctx.db.session() as session:
        assert (await session.get(AttendantProfile, ana.id)).presence == Presence.OFFLINE
    assert (await read_conversation(ctx.db, held)).assigned_attendant_id == bruno.id


async def test_a_heartbeat_keeps_an_attendant_online(ctx):
    ctx.settings = replace(ctx.settings, presence_timeout_seconds=90)
    ana = await staff(ctx.db)
    async with ctx.db.session() as session:
        await session.execute(
            update(AttendantProfile)
            .where(AttendantProfile.user_id == ana.id)
            .values(presence_changed_at=utcnow() - timedelta(hours=1))
        )

    await presence.heartbeat(ctx, [ana.id])

    assert await presence.expire_presence(ctx) == []
