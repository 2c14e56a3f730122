"""Resolving an episode and handing the patient back to the bot once
(handoff.transitions.resolution)."""

from datetime import timedelta

import pytest
from sqlalchemy import update

from handoff.transitions import common, queueing, resolution, talking
from models import Conversation, Owner, utcnow
from tests.factories import patient_message, staff
from tests.handoff.steps import FlakyBot, handed_off, on_two_channels, read_conversation


async def test_resolve_hands_the_patient_back_to_the_bot_and_frees_the_slot(ctx):
    ana = await staff(ctx.db, capacity=1)
    first = await handed_off(ctx)
    waiting = await handed_off(ctx)

    await resolution.resolve(ctx, first, ana)

    resolved = await read_conversation(ctx.db, first)
    assert resolved.owner == Owner.BOT
    assert resolved.resolved_at is not None
    assert resolved.handed_back_at is not None
    assert ctx.bot.hand_backs == [(resolved.patient_id, resolution.HAND_BACK_INTENT)]
    assert (await read_conversation(ctx.db, waiting)).assigned_attendant_id == ana.id


async def test_a_failing_hand_back_does_not_undo_the_resolution_and_is_retried(ctx):
    ctx.bot = FlakyBot(failures=1)
    ana = await staff(ctx.db)
    conversation_id = await handed_off(ctx)

    await resolution.resolve(ctx, conversation_id, ana)

    conversation = await read_conversation(ctx.db, conversation_id)
    assert (conversation.owner, conversation.handed_back_at) == (Owner.BOT, None)
    assert await resolution.retry_hand_backs(ctx) == 0  # too recent: the call may be in flight
    async with ctx.db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(resolved_at=utcnow() - timedelta(minutes=2))
        )
    assert await resolution.retry_hand_backs(ctx) == 1
    assert ctx.bot.hand_backs == [(conversation.patient_id, resolution.HAND_BACK_INTENT)]
    assert await resolution.retry_hand_backs(ctx) == 0


async def test_after_resolution_the_next_message_opens_a_bot_conversation(ctx):
    ana = await staff(ctx.db)
    recorded = await patient_message(ctx.db, user="v-after")
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    await resolution.resolve(ctx, recorded.conversation.id, ana)

    after = await patient_message(ctx.db, "obrigado!", user="v-after")

    assert after.conversation.id != recorded.conversation.id
    assert after.conversation.owner == Owner.BOT


async def test_a_resolved_conversation_accepts_no_more_actions(ctx):
    ana = await staff(ctx.db)
    conversation_id = await handed_off(ctx)
    await resolution.resolve(ctx, conversation_id, ana)

    with pytest.raises(common.ConversationClosed):
        await talking.reply(ctx, conversation_id, ana, "oi")


async def test_resolving_closes_every_channel_of_the_patient_and_hands_back_once(ctx):
    ana = await staff(ctx.db, capacity=1)
    webchat, whatsapp = await on_two_channels(ctx, "+5511944441111")
    waiting = await handed_off(ctx)

    await resolution.resolve(ctx, webchat, ana)

    for conversation_id in (webchat, whatsapp):
        closed = await read_conversation(ctx.db, conversation_id)
        assert (closed.owner, closed.status) == (Owner.BOT, "closed")
        assert closed.handed_back_at is not None
    assert len(ctx.bot.hand_backs) == 1  # one satisfaction question
    assert await resolution.retry_hand_backs(ctx) == 0
    assert (await read_conversation(ctx.db, waiting)).assigned_attendant_id == ana.id
    # The patient's next WhatsApp message goes to the bot, not to Ana.
    after = await patient_message(
        ctx.db, "obrigado", channel="whatsapp", user="5511944441111", phone="+5511944441111"
    )
    assert after.conversation.id != whatsapp
    assert await talking.join_open_episode(ctx, after.conversation.id) is False


async def test_a_failed_hand_back_of_two_channels_is_retried_once_for_the_patient(ctx):
    ctx.bot = FlakyBot(failures=1)
    ana = await staff(ctx.db)
    webchat, whatsapp = await on_two_channels(ctx, "+5511944442222")
    await resolution.resolve(ctx, whatsapp, ana)
    async with ctx.db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id.in_([webchat, whatsapp]))
            .values(resolved_at=utcnow() - timedelta(minutes=2))
        )

    assert await resolution.retry_hand_backs(ctx) == 1

    assert len(ctx.bot.hand_backs) == 1
    assert await resolution.retry_hand_backs(ctx) == 0
