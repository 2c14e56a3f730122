"""Conversations nobody answers go back to the queue (handoff.timers)."""

from dataclasses import replace

from handoff import timers
from handoff.transitions import talking
from models import Owner
from tests.factories import staff
from tests.handoff.steps import (
    assigned_ago,
    handed_off,
    holders,
    on_two_channels,
    read_conversation,
    transition_kinds,
)


async def test_an_unanswered_conversation_goes_to_another_attendant_after_the_timeout(ctx):
    ctx.settings = replace(ctx.settings, reassign_after_seconds=120)
    ana = await staff(ctx.db, capacity=2)
    silent = await handed_off(ctx)
    bruno = await staff(ctx.db, capacity=2)
    await assigned_ago(ctx.db, silent, 121)

    assert await timers.requeue_unanswered(ctx) == [silent]

    conversation = await read_conversation(ctx.db, silent)
    assert conversation.assigned_attendant_id == bruno.id
    assert await transition_kinds(ctx.db, silent) == ["handoff", "assigned", "requeued", "assigned"]
    del ana


async def test_an_answered_or_recent_conversation_stays_with_its_attendant(ctx):
    ctx.settings = replace(ctx.settings, reassign_after_seconds=120)
    ana = await staff(ctx.db)
    answered = await handed_off(ctx)
    recent = await handed_off(ctx)
    await talking.reply(ctx, answered, ana, "Oi! Já vejo isso.")
    await assigned_ago(ctx.db, answered, 600)

    assert await timers.requeue_unanswered(ctx) == []
    assert (await read_conversation(ctx.db, recent)).assigned_attendant_id == ana.id


async def test_the_only_attendant_gets_an_unanswered_conversation_back(ctx):
    ctx.settings = replace(ctx.settings, reassign_after_seconds=60)
    ana = await staff(ctx.db)
    silent = await handed_off(ctx)
    await assigned_ago(ctx.db, silent, 61)

    await timers.requeue_unanswered(ctx)

    assert (await read_conversation(ctx.db, silent)).assigned_attendant_id == ana.id


async def test_a_reply_on_one_channel_keeps_the_other_from_being_requeued_as_unanswered(ctx):
    ctx.settings = replace(ctx.settings, reassign_after_seconds=60)
    ana = await staff(ctx.db)
    webchat, whatsapp = await on_two_channels(ctx, "+5511944447777")
    await talking.reply(ctx, webchat, ana, "Estou vendo aqui.")
    for conversation_id in (webchat, whatsapp):
        await assigned_ago(ctx.db, conversation_id, 120)

    assert await timers.requeue_unanswered(ctx) == []

    assert await holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, ana.id)] * 2
