"""Moving a patient between people and the queue: take, transfer, reassign, take over,
priority (handoff.transitions.moves)."""

from dataclasses import replace

import pytest

from core.catalog import t
from handoff import presence
from handoff.transitions import common, moves, talking
from models import Owner, Presence, Priority, Role
from tests.factories import staff
from tests.handoff.steps import (
    handed_off,
    holders,
    on_two_channels,
    read_conversation,
    transition_kinds,
)


async def test_a_manager_raising_a_conversation_to_critical_puts_it_first(ctx):
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)
    first = await handed_off(ctx)
    urgent = await handed_off(ctx)

    await moves.set_priority(ctx, urgent, marta, Priority.CRITICAL)
    await presence.set_presence(ctx, bruno, Presence.ONLINE)

    assert (await read_conversation(ctx.db, urgent)).assigned_attendant_id == bruno.id
    assert (await read_conversation(ctx.db, first)).owner == Owner.QUEUED
    with pytest.raises(common.ManagersOnly):
        await moves.set_priority(ctx, first, bruno, Priority.CRITICAL)


async def test_transfer_moves_the_conversation_and_tells_the_patient(ctx):
    ana = await staff(ctx.db, capacity=1)
    conversation_id = await handed_off(ctx)
    bruno = await staff(ctx.db)

    await moves.transfer(ctx, conversation_id, ana, bruno.id)

    conversation = await read_conversation(ctx.db, conversation_id)
    assert conversation.assigned_attendant_id == bruno.id
    assert ctx.senders["webchat"].texts[-1] == t("patient.transferred", attendant=bruno.name)
    assert await transition_kinds(ctx.db, conversation_id) == ["handoff", "assigned", "transferred"]


async def test_transfer_frees_the_slot_for_the_next_in_the_queue(ctx):
    ana = await staff(ctx.db, capacity=1)
    first = await handed_off(ctx)
    waiting = await handed_off(ctx)
    bruno = await staff(ctx.db, capacity=1)
    # Bruno came online after the queue formed; he only receives what is given to him.
    await moves.transfer(ctx, first, ana, bruno.id)

    assert (await read_conversation(ctx.db, waiting)).assigned_attendant_id == ana.id


@pytest.mark.parametrize("presence", [Presence.OFFLINE, Presence.PAUSED])
async def test_transfer_to_someone_not_online_is_refused(ctx, presence):
    ana = await staff(ctx.db, capacity=1)
    conversation_id = await handed_off(ctx)
    away = await staff(ctx.db, presence=presence)

    with pytest.raises(common.AttendantUnavailable):
        await moves.transfer(ctx, conversation_id, ana, away.id)
    assert (await read_conversation(ctx.db, conversation_id)).assigned_attendant_id == ana.id


async def test_transfer_never_puts_the_receiver_over_capacity(ctx):
    ana = await staff(ctx.db, capacity=1)
    mine = await handed_off(ctx)
    bruno = await staff(ctx.db, capacity=1)
    await handed_off(ctx)  # Bruno's only slot

    with pytest.raises(common.AttendantUnavailable):
        await moves.transfer(ctx, mine, ana, bruno.id)


async def test_a_manager_reassigns_any_conversation_or_returns_it_to_the_queue(ctx):
    ana = await staff(ctx.db, capacity=1)
    conversation_id = await handed_off(ctx)
    bruno = await staff(ctx.db, capacity=1)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)

    await moves.reassign(ctx, conversation_id, marta, bruno.id)
    assert (await read_conversation(ctx.db, conversation_id)).assigned_attendant_id == bruno.id

    await presence.set_presence(ctx, ana, Presence.PAUSED)
    await moves.reassign(ctx, conversation_id, marta, None)
    conversation = await read_conversation(ctx.db, conversation_id)
    # Bruno just freed his only slot, so distribution gives it straight back to him.
    assert conversation.assigned_attendant_id == bruno.id
    assert await transition_kinds(ctx.db, conversation_id) == [
        "handoff",
        "assigned",
        "reassigned",
        "requeued",
        "assigned",
    ]


async def test_a_manager_takes_over_and_the_attendant_loses_the_conversation(ctx):
    ana = await staff(ctx.db, capacity=1)
    conversation_id = await handed_off(ctx)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)

    await moves.take_over(ctx, conversation_id, marta)

    assert (await read_conversation(ctx.db, conversation_id)).assigned_attendant_id == marta.id
    assert ctx.senders["webchat"].texts[-1] == t("patient.transferred", attendant=marta.name)
    with pytest.raises(common.NotOwner):
        await talking.reply(ctx, conversation_id, ana, "oi")
    await talking.reply(ctx, conversation_id, marta, "Aqui é a Marta, gerente.")


async def test_an_attendant_takes_from_the_queue_by_hand_within_capacity(ctx):
    queued = await handed_off(ctx)
    other = await handed_off(ctx)
    bruno = await staff(ctx.db, presence=Presence.PAUSED, capacity=1)

    await moves.take(ctx, queued, bruno)

    assert (await read_conversation(ctx.db, queued)).assigned_attendant_id == bruno.id
    assert ctx.senders["webchat"].texts[-1] == t("patient.assigned", attendant=bruno.name)
    with pytest.raises(common.AttendantUnavailable):
        await moves.take(ctx, other, bruno)
    with pytest.raises(moves.NotQueued):
        await moves.take(ctx, queued, bruno)


async def test_taking_by_hand_can_be_disabled(ctx):
    ctx.settings = replace(ctx.settings, manual_take=False)
    queued = await handed_off(ctx)
    bruno = await staff(ctx.db, presence=Presence.PAUSED)

    with pytest.raises(moves.ManualTakeDisabled):
        await moves.take(ctx, queued, bruno)


async def test_a_transfer_moves_the_patient_on_every_channel(ctx):
    ana = await staff(ctx.db)
    webchat, whatsapp = await on_two_channels(ctx, "+5511944443333")
    bruno = await staff(ctx.db)

    await moves.transfer(ctx, whatsapp, ana, bruno.id)

    assert await holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, bruno.id)] * 2
    with pytest.raises(common.NotOwner):
        await talking.reply(ctx, webchat, ana, "oi")
    # Told once, on the channel the transfer was made from.
    assert ctx.senders["whatsapp"].texts == [t("patient.transferred", attendant=bruno.name)]
    assert t("patient.transferred", attendant=bruno.name) not in ctx.senders["webchat"].texts


async def test_a_manager_reassigning_or_taking_over_moves_every_channel(ctx):
    await staff(ctx.db)
    webchat, whatsapp = await on_two_channels(ctx, "+5511944444444")
    bruno = await staff(ctx.db)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)

    await moves.reassign(ctx, webchat, marta, bruno.id)
    assert await holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, bruno.id)] * 2

    await moves.take_over(ctx, whatsapp, marta)
    assert await holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, marta.id)] * 2
    assert await transition_kinds(ctx.db, whatsapp) == ["linked", "reassigned", "taken_over"]


async def test_a_manager_returning_a_patient_to_the_queue_returns_every_channel(ctx):
    ana = await staff(ctx.db)
    webchat, whatsapp = await on_two_channels(ctx, "+5511944445555")
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    await presence.set_presence(ctx, ana, Presence.PAUSED)

    await moves.reassign(ctx, webchat, marta, None)

    assert await holders(ctx.db, webchat, whatsapp) == [(Owner.QUEUED, None)] * 2
    bruno = await staff(ctx.db, presence=Presence.OFFLINE)
    await presence.set_presence(ctx, bruno, Presence.ONLINE)
    assert await holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, bruno.id)] * 2


async def test_taking_a_patient_from_the_queue_takes_every_channel(ctx):
    webchat, whatsapp = await on_two_channels(ctx, "+5511944446666")
    bruno = await staff(ctx.db, presence=Presence.PAUSED)

    await moves.take(ctx, whatsapp, bruno)

    assert await holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, bruno.id)] * 2
