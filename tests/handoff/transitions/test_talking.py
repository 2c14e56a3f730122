"""Replies, notes and a patient's second channel (handoff.transitions.talking)."""

import pytest
from sqlalchemy import select

from handoff import presence
from handoff.transitions import common, talking
from models import Message, Owner, Presence, Role
from tests.factories import patient_message, staff
from tests.handoff.steps import handed_off, read_conversation, transition_kinds


async def test_reply_goes_to_the_patient_and_stamps_first_human_reply(ctx):
    ana = await staff(ctx.db)
    conversation_id = await handed_off(ctx)

    await talking.reply(ctx, conversation_id, ana, "Olá, sou a Ana. Como posso ajudar?")

    assert ctx.senders["webchat"].texts[-1] == "Olá, sou a Ana. Como posso ajudar?"
    assert (await read_conversation(ctx.db, conversation_id)).first_human_reply_at is not None


async def test_a_reply_on_another_channel_reaches_the_patient_there_and_their_answer_comes_back(
    ctx,
):
    ana = await staff(ctx.db, capacity=1)
    phone = "+5511912345678"
    whatsapp = await patient_message(
        ctx.db, "oi", channel="whatsapp", user="5511912345678", phone=phone
    )
    conversation_id = await handed_off(ctx, channel="webchat", phone=phone)

    await talking.reply(ctx, conversation_id, ana, "Te mandei pelo WhatsApp.", channel="whatsapp")

    assert ctx.senders["whatsapp"].texts == ["Te mandei pelo WhatsApp."]
    linked = await read_conversation(ctx.db, whatsapp.conversation.id)
    assert (linked.owner, linked.assigned_attendant_id) == (Owner.ATTENDANT, ana.id)
    assert await transition_kinds(ctx.db, linked.id) == ["linked"]
    # One patient, one slot: Ana (capacity 1) still serves them on both channels.
    async with ctx.db.session() as session:
        held = (await session.execute(common.patients_held(ana.id))).scalar_one()
    assert held == 1


async def test_a_reply_on_a_channel_the_patient_does_not_use_is_refused(ctx):
    ana = await staff(ctx.db)
    conversation_id = await handed_off(ctx)

    with pytest.raises(talking.ChannelUnavailable):
        await talking.reply(ctx, conversation_id, ana, "oi", channel="whatsapp")


async def test_internal_notes_and_whispers_never_reach_the_patient(ctx):
    ana = await staff(ctx.db)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    conversation_id = await handed_off(ctx)
    delivered_before = list(ctx.senders["webchat"].texts)

    await talking.add_note(ctx, conversation_id, ana, "Paciente pediu retorno à tarde.")
    await talking.add_note(ctx, conversation_id, marta, "Ana, confirme o convênio.")

    assert ctx.senders["webchat"].texts == delivered_before
    async with ctx.db.session() as session:
        notes = (
            (await session.execute(select(Message).where(Message.internal.is_(True))))
            .scalars()
            .all()
        )
    assert [(n.author_id, n.text) for n in notes] == [
        (ana.id, "Paciente pediu retorno à tarde."),
        (marta.id, "Ana, confirme o convênio."),
    ]
    assert [e["message"]["internal"] for e in ctx.bus.of_type("message")][-2:] == [True, True]


async def test_a_patient_writing_on_another_channel_stays_with_their_attendant(ctx):
    ana = await staff(ctx.db, capacity=1)
    phone = "+5511955554444"
    await handed_off(ctx, channel="webchat", phone=phone)
    whatsapp = await patient_message(
        ctx.db, "mandei por aqui também", channel="whatsapp", user="5511955554444", phone=phone
    )
    stranger = await patient_message(ctx.db, "oi")

    assert await talking.join_open_episode(ctx, whatsapp.conversation.id) is True
    assert await talking.join_open_episode(ctx, stranger.conversation.id) is False

    joined = await read_conversation(ctx.db, whatsapp.conversation.id)
    assert (joined.owner, joined.assigned_attendant_id) == (Owner.ATTENDANT, ana.id)
    assert (await read_conversation(ctx.db, stranger.conversation.id)).owner == Owner.BOT


async def test_a_patient_waiting_in_the_queue_keeps_one_place_across_channels(ctx):
    phone = "+5511933332222"
    webchat = await handed_off(ctx, channel="webchat", phone=phone)
    newer = await handed_off(ctx)
    whatsapp = await patient_message(
        ctx.db, "oi?", channel="whatsapp", user="5511933332222", phone=phone
    )
    await talking.join_open_episode(ctx, whatsapp.conversation.id)
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)

    await presence.set_presence(ctx, bruno, Presence.ONLINE)

    for conversation_id in (webchat, whatsapp.conversation.id):
        assert (await read_conversation(ctx.db, conversation_id)).assigned_attendant_id == bruno.id
    assert (await read_conversation(ctx.db, newer)).owner == Owner.QUEUED
