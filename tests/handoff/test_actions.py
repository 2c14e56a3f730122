import pytest

from handoff import actions
from handoff.catalog import t
from models import AttendantProfile, Conversation, Owner, Presence, Priority, Role
from tests.factories import patient_message, staff


async def _conversation(db, conversation_id):
    async with db.session() as session:
        return await session.get(Conversation, conversation_id)


async def test_handoff_assigns_to_an_online_attendant_and_tells_the_patient(ctx):
    ana = await staff(ctx.db)
    recorded = await patient_message(ctx.db, "quero falar com alguém")

    await actions.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")

    conversation = await _conversation(ctx.db, recorded.conversation.id)
    assert conversation.owner == Owner.ATTENDANT
    assert conversation.assigned_attendant_id == ana.id
    assert conversation.handoff_reason == "pedido_do_paciente"
    assert ctx.senders["webchat"].texts == [t("patient.assigned", attendant=ana.name)]


async def test_without_free_attendants_the_conversation_waits_in_the_queue(ctx):
    await staff(ctx.db, presence=Presence.OFFLINE)
    recorded = await patient_message(ctx.db)

    await actions.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")

    conversation = await _conversation(ctx.db, recorded.conversation.id)
    assert conversation.owner == Owner.QUEUED
    assert ctx.senders["webchat"].texts == [t("patient.queued")]


async def test_attendant_coming_online_takes_the_longest_waiting_first(ctx):
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)
    older = await patient_message(ctx.db)
    newer = await patient_message(ctx.db)
    await actions.request_handoff(ctx, older.conversation.id, reason="pedido_do_paciente")
    await actions.request_handoff(ctx, newer.conversation.id, reason="pedido_do_paciente")

    await actions.set_presence(ctx, bruno, Presence.ONLINE)

    assert (await _conversation(ctx.db, older.conversation.id)).assigned_attendant_id == bruno.id
    assert (await _conversation(ctx.db, newer.conversation.id)).owner == Owner.QUEUED


async def test_critical_conversations_jump_the_queue(ctx):
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)
    routine = await patient_message(ctx.db)
    emergency = await patient_message(ctx.db, "estou com dor no peito")
    await actions.request_handoff(ctx, routine.conversation.id, reason="pedido_do_paciente")
    await actions.request_handoff(
        ctx, emergency.conversation.id, reason="emergencia", priority=Priority.CRITICAL
    )

    await actions.set_presence(ctx, bruno, Presence.ONLINE)

    assert (
        await _conversation(ctx.db, emergency.conversation.id)
    ).assigned_attendant_id == bruno.id
    assert (await _conversation(ctx.db, routine.conversation.id)).owner == Owner.QUEUED


async def test_distribution_balances_load_and_respects_capacity(ctx):
    ana = await staff(ctx.db, capacity=2)
    bruno = await staff(ctx.db, capacity=2)
    conversations = [await patient_message(ctx.db) for _ in range(5)]

    for recorded in conversations:
        await actions.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")

    owners = [
        (await _conversation(ctx.db, r.conversation.id)).assigned_attendant_id
        for r in conversations
    ]
    assert owners.count(ana.id) == 2
    assert owners.count(bruno.id) == 2
    assert owners.count(None) == 1


async def test_managers_are_not_auto_assigned(ctx):
    await staff(ctx.db, Role.MANAGER)
    recorded = await patient_message(ctx.db)

    await actions.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")

    assert (await _conversation(ctx.db, recorded.conversation.id)).owner == Owner.QUEUED


async def test_reply_goes_to_the_patient_and_stamps_first_human_reply(ctx):
    ana = await staff(ctx.db)
    recorded = await patient_message(ctx.db)
    await actions.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")

    await actions.reply(ctx, recorded.conversation.id, ana, "Olá, sou a Ana. Como posso ajudar?")

    assert ctx.senders["webchat"].texts[-1] == "Olá, sou a Ana. Como posso ajudar?"
    assert (await _conversation(ctx.db, recorded.conversation.id)).first_human_reply_at is not None


async def test_an_attendant_cannot_reply_in_a_colleagues_conversation(ctx):
    await staff(ctx.db, capacity=1)
    recorded = await patient_message(ctx.db)
    await actions.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    intruder = await staff(ctx.db)

    with pytest.raises(actions.NotOwner):
        await actions.reply(ctx, recorded.conversation.id, intruder, "oi")
    with pytest.raises(actions.NotOwner):
        await actions.resolve(ctx, recorded.conversation.id, intruder)


async def test_resolve_hands_the_patient_back_to_the_bot_and_frees_the_slot(ctx):
    ana = await staff(ctx.db, capacity=1)
    first = await patient_message(ctx.db)
    waiting = await patient_message(ctx.db)
    await actions.request_handoff(ctx, first.conversation.id, reason="pedido_do_paciente")
    await actions.request_handoff(ctx, waiting.conversation.id, reason="pedido_do_paciente")

    await actions.resolve(ctx, first.conversation.id, ana)

    resolved = await _conversation(ctx.db, first.conversation.id)
    assert resolved.owner == Owner.BOT
    assert resolved.resolved_at is not None
    assert ctx.bot.hand_backs == [(first.conversation.patient_id, actions.HAND_BACK_INTENT)]
    assert (await _conversation(ctx.db, waiting.conversation.id)).assigned_attendant_id == ana.id


async def test_after_resolution_the_next_message_opens_a_bot_conversation(ctx):
    ana = await staff(ctx.db)
    recorded = await patient_message(ctx.db, user="v-after")
    await actions.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    await actions.resolve(ctx, recorded.conversation.id, ana)

    after = await patient_message(ctx.db, "obrigado!", user="v-after")

    assert after.conversation.id != recorded.conversation.id
    assert after.conversation.owner == Owner.BOT


async def test_presence_change_is_published(ctx):
    ana = await staff(ctx.db, presence=Presence.OFFLINE)

    await actions.set_presence(ctx, ana, Presence.PAUSED)

    async with ctx.db.session() as session:
        assert (await session.get(AttendantProfile, ana.id)).presence == Presence.PAUSED
    assert ctx.bus.of_type("presence") == [
        {"type": "presence", "attendant_id": ana.id, "presence": "pausa"}
    ]
