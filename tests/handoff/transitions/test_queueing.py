"""Handing off to the queue, distribution to the attendant who should have each patient, and
what a waiting patient is told (handoff.transitions.queueing)."""

from dataclasses import replace
from datetime import timedelta

from core.catalog import t
from handoff import presence
from handoff.queue import CLINIC_TZ
from handoff.transitions import queueing, resolution
from models import Owner, Presence, Priority, Role, utcnow
from tests.factories import patient_message, staff
from tests.handoff.steps import assigned_ago, handed_off, read_conversation, transition_kinds


async def test_handoff_assigns_to_an_online_attendant_and_tells_the_patient(ctx):
    ana = await staff(ctx.db)

    conversation_id = await handed_off(ctx)

    conversation = await read_conversation(ctx.db, conversation_id)
    assert conversation.owner == Owner.ATTENDANT
    assert conversation.assigned_attendant_id == ana.id
    assert conversation.handoff_reason == "pedido_do_paciente"
    assert ctx.senders["webchat"].texts == [t("patient.assigned", attendant=ana.name)]
    assert await transition_kinds(ctx.db, conversation_id) == ["handoff", "assigned"]


async def test_a_queued_patient_is_told_their_position_and_that_the_wait_is_unknown(ctx):
    await staff(ctx.db, presence=Presence.OFFLINE)
    await handed_off(ctx)

    second = await handed_off(ctx)

    assert (await read_conversation(ctx.db, second)).owner == Owner.QUEUED
    assert ctx.senders["webchat"].texts[-1] == (
        t("patient.queued", position=2) + " " + t("patient.wait_unknown")
    )


async def test_the_expected_wait_follows_the_recent_pace_of_the_attendants(ctx):
    ana = await staff(ctx.db, capacity=1)
    # Three recent episodes handled in about 20 minutes each.
    for _ in range(3):
        conversation_id = await handed_off(ctx)
        await assigned_ago(ctx.db, conversation_id, 19 * 60 + 30)
        await resolution.resolve(ctx, conversation_id, ana)
    await handed_off(ctx)  # Ana is busy with this one

    await handed_off(ctx)  # position 1: one slot frees in about 20 minutes

    assert ctx.senders["webchat"].texts[-1] == (
        t("patient.queued", position=1) + " " + t("patient.wait_minutes", minutes=20)
    )


async def test_outside_business_hours_the_patient_is_told_when_the_team_is_back(ctx):
    tomorrow = (utcnow().astimezone(CLINIC_TZ) + timedelta(days=1)).weekday()
    ctx.settings = replace(ctx.settings, staff_hours=f"{tomorrow} 08:00-12:00")

    conversation_id = await handed_off(ctx)

    assert (await read_conversation(ctx.db, conversation_id)).owner == Owner.QUEUED
    assert ctx.senders["webchat"].texts == [
        t("patient.queued_closed", when=t("patient.when_tomorrow", time="8h"), position=1)
    ]


async def test_attendant_coming_online_takes_the_longest_waiting_first(ctx):
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)
    older = await handed_off(ctx)
    newer = await handed_off(ctx)

    await presence.set_presence(ctx, bruno, Presence.ONLINE)

    assert (await read_conversation(ctx.db, older)).assigned_attendant_id == bruno.id
    assert (await read_conversation(ctx.db, newer)).owner == Owner.QUEUED


async def test_critical_conversations_jump_the_queue(ctx):
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)
    routine = await handed_off(ctx)
    emergency = await patient_message(ctx.db, "estou com dor no peito")
    await queueing.request_handoff(
        ctx, emergency.conversation.id, reason="emergencia", priority=Priority.CRITICAL
    )

    await presence.set_presence(ctx, bruno, Presence.ONLINE)

    assert (
        await read_conversation(ctx.db, emergency.conversation.id)
    ).assigned_attendant_id == bruno.id
    assert (await read_conversation(ctx.db, routine)).owner == Owner.QUEUED


async def test_distribution_balances_load_and_respects_capacity(ctx):
    ana = await staff(ctx.db, capacity=2)
    bruno = await staff(ctx.db, capacity=2)

    owners = [
        (await read_conversation(ctx.db, await handed_off(ctx))).assigned_attendant_id
        for _ in range(5)
    ]

    assert owners[:4] == [ana.id, bruno.id, ana.id, bruno.id]
    assert owners[4] is None


async def test_ties_go_to_the_attendant_idle_the_longest(ctx):
    ana = await staff(ctx.db)
    bruno = await staff(ctx.db)
    first = await handed_off(ctx)
    await resolution.resolve(ctx, first, ana)

    second = await handed_off(ctx)

    assert (await read_conversation(ctx.db, second)).assigned_attendant_id == bruno.id


async def test_managers_are_not_auto_assigned(ctx):
    await staff(ctx.db, Role.MANAGER)

    conversation_id = await handed_off(ctx)

    assert (await read_conversation(ctx.db, conversation_id)).owner == Owner.QUEUED


async def test_a_patient_on_a_second_channel_goes_to_the_attendant_already_serving_them(ctx):
    ana = await staff(ctx.db, capacity=1)
    await staff(ctx.db, capacity=1)
    phone = "+5511987654321"
    await handed_off(ctx, channel="webchat", phone=phone)

    other = await handed_off(ctx, channel="whatsapp", user="5511987654321", phone=phone)

    assert (await read_conversation(ctx.db, other)).assigned_attendant_id == ana.id
