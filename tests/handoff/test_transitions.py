from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.catalog import t
from core.context import AssistantUnavailable
from handoff import timers, transitions
from handoff.queue import CLINIC_TZ
from models import (
    Appointment,
    AppointmentStatus,
    AttendantAction,
    AttendantProfile,
    Conversation,
    Doctor,
    HandoffEvent,
    Message,
    Owner,
    Presence,
    Priority,
    Role,
    Specialty,
    utcnow,
)
from tests.factories import patient_message, staff


async def _conversation(db, conversation_id):
    async with db.session() as session:
        return await session.get(Conversation, conversation_id)


async def _kinds(db, conversation_id):
    async with db.session() as session:
        query = (
            select(HandoffEvent.kind)
            .where(HandoffEvent.conversation_id == conversation_id)
            .order_by(HandoffEvent.id)
        )
        return list((await session.execute(query)).scalars())


async def _handed_off(ctx, text="quero falar com alguém", **fields):
    recorded = await patient_message(ctx.db, text, **fields)
    await transitions.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    return recorded.conversation.id


async def _age(db, conversation_id, seconds):
    """Pretend the conversation was assigned `seconds` ago."""
    async with db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(assigned_at=utcnow() - timedelta(seconds=seconds))
        )


async def test_handoff_assigns_to_an_online_attendant_and_tells_the_patient(ctx):
    ana = await staff(ctx.db)

    conversation_id = await _handed_off(ctx)

    conversation = await _conversation(ctx.db, conversation_id)
    assert conversation.owner == Owner.ATTENDANT
    assert conversation.assigned_attendant_id == ana.id
    assert conversation.handoff_reason == "pedido_do_paciente"
    assert ctx.senders["webchat"].texts == [t("patient.assigned", attendant=ana.name)]
    assert await _kinds(ctx.db, conversation_id) == ["handoff", "assigned"]


async def test_a_queued_patient_is_told_their_position_and_that_the_wait_is_unknown(ctx):
    await staff(ctx.db, presence=Presence.OFFLINE)
    await _handed_off(ctx)

    second = await _handed_off(ctx)

    assert (await _conversation(ctx.db, second)).owner == Owner.QUEUED
    assert ctx.senders["webchat"].texts[-1] == (
        t("patient.queued", position=2) + " " + t("patient.wait_unknown")
    )


async def test_the_expected_wait_follows_the_recent_pace_of_the_attendants(ctx):
    ana = await staff(ctx.db, capacity=1)
    # Three recent episodes handled in about 20 minutes each.
    for _ in range(3):
        conversation_id = await _handed_off(ctx)
        await _age(ctx.db, conversation_id, 19 * 60 + 30)
        await transitions.resolve(ctx, conversation_id, ana)
    await _handed_off(ctx)  # Ana is busy with this one

    await _handed_off(ctx)  # position 1: one slot frees in about 20 minutes

    assert ctx.senders["webchat"].texts[-1] == (
        t("patient.queued", position=1) + " " + t("patient.wait_minutes", minutes=20)
    )


async def test_outside_business_hours_the_patient_is_told_when_the_team_is_back(ctx):
    tomorrow = (utcnow().astimezone(CLINIC_TZ) + timedelta(days=1)).weekday()
    ctx.settings = replace(ctx.settings, staff_hours=f"{tomorrow} 08:00-12:00")

    conversation_id = await _handed_off(ctx)

    assert (await _conversation(ctx.db, conversation_id)).owner == Owner.QUEUED
    assert ctx.senders["webchat"].texts == [
        t("patient.queued_closed", when=t("patient.when_tomorrow", time="8h"), position=1)
    ]


async def test_attendant_coming_online_takes_the_longest_waiting_first(ctx):
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)
    older = await _handed_off(ctx)
    newer = await _handed_off(ctx)

    await transitions.set_presence(ctx, bruno, Presence.ONLINE)

    assert (await _conversation(ctx.db, older)).assigned_attendant_id == bruno.id
    assert (await _conversation(ctx.db, newer)).owner == Owner.QUEUED


async def test_critical_conversations_jump_the_queue(ctx):
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)
    routine = await _handed_off(ctx)
    emergency = await patient_message(ctx.db, "estou com dor no peito")
    await transitions.request_handoff(
        ctx, emergency.conversation.id, reason="emergencia", priority=Priority.CRITICAL
    )

    await transitions.set_presence(ctx, bruno, Presence.ONLINE)

    assert (
        await _conversation(ctx.db, emergency.conversation.id)
    ).assigned_attendant_id == bruno.id
    assert (await _conversation(ctx.db, routine)).owner == Owner.QUEUED


async def test_a_manager_raising_a_conversation_to_critical_puts_it_first(ctx):
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)
    first = await _handed_off(ctx)
    urgent = await _handed_off(ctx)

    await transitions.set_priority(ctx, urgent, marta, Priority.CRITICAL)
    await transitions.set_presence(ctx, bruno, Presence.ONLINE)

    assert (await _conversation(ctx.db, urgent)).assigned_attendant_id == bruno.id
    assert (await _conversation(ctx.db, first)).owner == Owner.QUEUED
    with pytest.raises(transitions.Forbidden):
        await transitions.set_priority(ctx, first, bruno, Priority.CRITICAL)


async def test_distribution_balances_load_and_respects_capacity(ctx):
    ana = await staff(ctx.db, capacity=2)
    bruno = await staff(ctx.db, capacity=2)

    owners = [
        (await _conversation(ctx.db, await _handed_off(ctx))).assigned_attendant_id
        for _ in range(5)
    ]

    assert owners[:4] == [ana.id, bruno.id, ana.id, bruno.id]
    assert owners[4] is None


async def test_ties_go_to_the_attendant_idle_the_longest(ctx):
    ana = await staff(ctx.db)
    bruno = await staff(ctx.db)
    first = await _handed_off(ctx)
    await transitions.resolve(ctx, first, ana)

    second = await _handed_off(ctx)

    assert (await _conversation(ctx.db, second)).assigned_attendant_id == bruno.id


async def test_managers_are_not_auto_assigned(ctx):
    await staff(ctx.db, Role.MANAGER)

    conversation_id = await _handed_off(ctx)

    assert (await _conversation(ctx.db, conversation_id)).owner == Owner.QUEUED


async def test_a_patient_on_a_second_channel_goes_to_the_attendant_already_serving_them(ctx):
    ana = await staff(ctx.db, capacity=1)
    await staff(ctx.db, capacity=1)
    phone = "+5511987654321"
    await _handed_off(ctx, channel="webchat", phone=phone)

    other = await _handed_off(ctx, channel="whatsapp", user="5511987654321", phone=phone)

    assert (await _conversation(ctx.db, other)).assigned_attendant_id == ana.id


async def test_reply_goes_to_the_patient_and_stamps_first_human_reply(ctx):
    ana = await staff(ctx.db)
    conversation_id = await _handed_off(ctx)

    await transitions.reply(ctx, conversation_id, ana, "Olá, sou a Ana. Como posso ajudar?")

    assert ctx.senders["webchat"].texts[-1] == "Olá, sou a Ana. Como posso ajudar?"
    assert (await _conversation(ctx.db, conversation_id)).first_human_reply_at is not None


async def test_a_reply_on_another_channel_reaches_the_patient_there_and_their_answer_comes_back(
    ctx,
):
    ana = await staff(ctx.db, capacity=1)
    phone = "+5511912345678"
    whatsapp = await patient_message(
        ctx.db, "oi", channel="whatsapp", user="5511912345678", phone=phone
    )
    conversation_id = await _handed_off(ctx, channel="webchat", phone=phone)

    await transitions.reply(
        ctx, conversation_id, ana, "Te mandei pelo WhatsApp.", channel="whatsapp"
    )

    assert ctx.senders["whatsapp"].texts == ["Te mandei pelo WhatsApp."]
    linked = await _conversation(ctx.db, whatsapp.conversation.id)
    assert (linked.owner, linked.assigned_attendant_id) == (Owner.ATTENDANT, ana.id)
    assert await _kinds(ctx.db, linked.id) == ["linked"]
    # One patient, one slot: Ana (capacity 1) still serves them on both channels.
    async with ctx.db.session() as session:
        held = (await session.execute(transitions._patients_held(ana.id))).scalar_one()
    assert held == 1


async def test_a_reply_on_a_channel_the_patient_does_not_use_is_refused(ctx):
    ana = await staff(ctx.db)
    conversation_id = await _handed_off(ctx)

    with pytest.raises(transitions.ChannelUnavailable):
        await transitions.reply(ctx, conversation_id, ana, "oi", channel="whatsapp")


async def test_internal_notes_and_whispers_never_reach_the_patient(ctx):
    ana = await staff(ctx.db)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    conversation_id = await _handed_off(ctx)
    delivered_before = list(ctx.senders["webchat"].texts)

    await transitions.add_note(ctx, conversation_id, ana, "Paciente pediu retorno à tarde.")
    await transitions.add_note(ctx, conversation_id, marta, "Ana, confirme o convênio.")

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


async def test_an_attendant_cannot_act_in_a_colleagues_conversation(ctx):
    await staff(ctx.db, capacity=1)
    conversation_id = await _handed_off(ctx)
    intruder = await staff(ctx.db)
    third = await staff(ctx.db)

    for attempt in (
        transitions.reply(ctx, conversation_id, intruder, "oi"),
        transitions.add_note(ctx, conversation_id, intruder, "nota"),
        transitions.resolve(ctx, conversation_id, intruder),
        transitions.transfer(ctx, conversation_id, intruder, third.id),
        transitions.record_action(ctx, conversation_id, intruder, "exams_delivered"),
        transitions.reassign(ctx, conversation_id, intruder, third.id),
        transitions.take_over(ctx, conversation_id, intruder),
    ):
        with pytest.raises(transitions.Forbidden):
            await attempt


async def test_transfer_moves_the_conversation_and_tells_the_patient(ctx):
    ana = await staff(ctx.db, capacity=1)
    conversation_id = await _handed_off(ctx)
    bruno = await staff(ctx.db)

    await transitions.transfer(ctx, conversation_id, ana, bruno.id)

    conversation = await _conversation(ctx.db, conversation_id)
    assert conversation.assigned_attendant_id == bruno.id
    assert ctx.senders["webchat"].texts[-1] == t("patient.transferred", attendant=bruno.name)
    assert await _kinds(ctx.db, conversation_id) == ["handoff", "assigned", "transferred"]


async def test_transfer_frees_the_slot_for_the_next_in_the_queue(ctx):
    ana = await staff(ctx.db, capacity=1)
    first = await _handed_off(ctx)
    waiting = await _handed_off(ctx)
    bruno = await staff(ctx.db, capacity=1)
    # Bruno came online after the queue formed; he only receives what is given to him.
    await transitions.transfer(ctx, first, ana, bruno.id)

    assert (await _conversation(ctx.db, waiting)).assigned_attendant_id == ana.id


@pytest.mark.parametrize("presence", [Presence.OFFLINE, Presence.PAUSED])
async def test_transfer_to_someone_not_online_is_refused(ctx, presence):
    ana = await staff(ctx.db, capacity=1)
    conversation_id = await _handed_off(ctx)
    away = await staff(ctx.db, presence=presence)

    with pytest.raises(transitions.AttendantUnavailable):
        await transitions.transfer(ctx, conversation_id, ana, away.id)
    assert (await _conversation(ctx.db, conversation_id)).assigned_attendant_id == ana.id


async def test_transfer_never_puts_the_receiver_over_capacity(ctx):
    ana = await staff(ctx.db, capacity=1)
    mine = await _handed_off(ctx)
    bruno = await staff(ctx.db, capacity=1)
    await _handed_off(ctx)  # Bruno's only slot

    with pytest.raises(transitions.AttendantUnavailable):
        await transitions.transfer(ctx, mine, ana, bruno.id)


async def test_a_manager_reassigns_any_conversation_or_returns_it_to_the_queue(ctx):
    ana = await staff(ctx.db, capacity=1)
    conversation_id = await _handed_off(ctx)
    bruno = await staff(ctx.db, capacity=1)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)

    await transitions.reassign(ctx, conversation_id, marta, bruno.id)
    assert (await _conversation(ctx.db, conversation_id)).assigned_attendant_id == bruno.id

    await transitions.set_presence(ctx, ana, Presence.PAUSED)
    await transitions.reassign(ctx, conversation_id, marta, None)
    conversation = await _conversation(ctx.db, conversation_id)
    # Bruno just freed his only slot, so distribution gives it straight back to him.
    assert conversation.assigned_attendant_id == bruno.id
    assert await _kinds(ctx.db, conversation_id) == [
        "handoff",
        "assigned",
        "reassigned",
        "requeued",
        "assigned",
    ]


async def test_a_manager_takes_over_and_the_attendant_loses_the_conversation(ctx):
    ana = await staff(ctx.db, capacity=1)
    conversation_id = await _handed_off(ctx)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)

    await transitions.take_over(ctx, conversation_id, marta)

    assert (await _conversation(ctx.db, conversation_id)).assigned_attendant_id == marta.id
    assert ctx.senders["webchat"].texts[-1] == t("patient.transferred", attendant=marta.name)
    with pytest.raises(transitions.NotOwner):
        await transitions.reply(ctx, conversation_id, ana, "oi")
    await transitions.reply(ctx, conversation_id, marta, "Aqui é a Marta, gerente.")


async def test_an_attendant_takes_from_the_queue_by_hand_within_capacity(ctx):
    queued = await _handed_off(ctx)
    other = await _handed_off(ctx)
    bruno = await staff(ctx.db, presence=Presence.PAUSED, capacity=1)

    await transitions.take(ctx, queued, bruno)

    assert (await _conversation(ctx.db, queued)).assigned_attendant_id == bruno.id
    assert ctx.senders["webchat"].texts[-1] == t("patient.assigned", attendant=bruno.name)
    with pytest.raises(transitions.AttendantUnavailable):
        await transitions.take(ctx, other, bruno)
    with pytest.raises(transitions.NotQueued):
        await transitions.take(ctx, queued, bruno)


async def test_taking_by_hand_can_be_disabled(ctx):
    ctx.settings = replace(ctx.settings, manual_take=False)
    queued = await _handed_off(ctx)
    bruno = await staff(ctx.db, presence=Presence.PAUSED)

    with pytest.raises(transitions.ManualTakeDisabled):
        await transitions.take(ctx, queued, bruno)


async def test_going_offline_returns_conversations_to_the_queue_ahead_of_newer_ones(ctx):
    ana = await staff(ctx.db, capacity=1)
    held = await _handed_off(ctx)
    newer = await _handed_off(ctx)
    original_queued_at = (await _conversation(ctx.db, held)).queued_at
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)

    await transitions.set_presence(ctx, ana, Presence.OFFLINE)
    await transitions.set_presence(ctx, bruno, Presence.ONLINE)

    conversation = await _conversation(ctx.db, held)
    assert conversation.assigned_attendant_id == bruno.id
    assert conversation.queued_at == original_queued_at
    assert (await _conversation(ctx.db, newer)).owner == Owner.QUEUED


async def test_a_patient_whose_attendant_left_is_told_their_new_place(ctx):
    ana = await staff(ctx.db, capacity=1)
    held = await _handed_off(ctx)

    await transitions.set_presence(ctx, ana, Presence.OFFLINE)

    assert (await _conversation(ctx.db, held)).owner == Owner.QUEUED
    assert ctx.senders["webchat"].texts[-1].startswith(t("patient.queued", position=1))


async def test_pausa_keeps_current_conversations_but_receives_no_new_ones(ctx):
    ana = await staff(ctx.db)
    held = await _handed_off(ctx)

    await transitions.set_presence(ctx, ana, Presence.PAUSED)
    newer = await _handed_off(ctx)

    assert (await _conversation(ctx.db, held)).assigned_attendant_id == ana.id
    assert (await _conversation(ctx.db, newer)).owner == Owner.QUEUED


async def test_an_unanswered_conversation_goes_to_another_attendant_after_the_timeout(ctx):
    ctx.settings = replace(ctx.settings, reassign_after_seconds=120)
    ana = await staff(ctx.db, capacity=2)
    silent = await _handed_off(ctx)
    bruno = await staff(ctx.db, capacity=2)
    await _age(ctx.db, silent, 121)

    assert await timers.requeue_unanswered(ctx) == [silent]

    conversation = await _conversation(ctx.db, silent)
    assert conversation.assigned_attendant_id == bruno.id
    assert await _kinds(ctx.db, silent) == ["handoff", "assigned", "requeued", "assigned"]
    del ana


async def test_an_answered_or_recent_conversation_stays_with_its_attendant(ctx):
    ctx.settings = replace(ctx.settings, reassign_after_seconds=120)
    ana = await staff(ctx.db)
    answered = await _handed_off(ctx)
    recent = await _handed_off(ctx)
    await transitions.reply(ctx, answered, ana, "Oi! Já vejo isso.")
    await _age(ctx.db, answered, 600)

    assert await timers.requeue_unanswered(ctx) == []
    assert (await _conversation(ctx.db, recent)).assigned_attendant_id == ana.id


async def test_the_only_attendant_gets_an_unanswered_conversation_back(ctx):
    ctx.settings = replace(ctx.settings, reassign_after_seconds=60)
    ana = await staff(ctx.db)
    silent = await _handed_off(ctx)
    await _age(ctx.db, silent, 61)

    await timers.requeue_unanswered(ctx)

    assert (await _conversation(ctx.db, silent)).assigned_attendant_id == ana.id


async def test_an_attendant_who_closed_the_workspace_goes_offline_after_the_timeout(ctx):
    ctx.settings = replace(ctx.settings, presence_timeout_seconds=90)
    ana = await staff(ctx.db)
    bruno = await staff(ctx.db, presence=Presence.OFFLINE)
    held = await _handed_off(ctx)
    long_ago = utcnow() - timedelta(seconds=91)
    async with ctx.db.session() as session:
        await session.execute(
            update(AttendantProfile)
            .where(AttendantProfile.user_id == ana.id)
            .values(last_seen_at=long_ago, presence_changed_at=long_ago)
        )

    assert await timers.expire_presence(ctx) == [ana.id]
    await timers.heartbeat(ctx, [ana.id])  # a heartbeat does not bring her back online
    await transitions.set_presence(ctx, bruno, Presence.ONLINE)

    async with ctx.db.session() as session:
        assert (await session.get(AttendantProfile, ana.id)).presence == Presence.OFFLINE
    assert (await _conversation(ctx.db, held)).assigned_attendant_id == bruno.id


async def test_a_heartbeat_keeps_an_attendant_online(ctx):
    ctx.settings = replace(ctx.settings, presence_timeout_seconds=90)
    ana = await staff(ctx.db)
    async with ctx.db.session() as session:
        await session.execute(
            update(AttendantProfile)
            .where(AttendantProfile.user_id == ana.id)
            .values(presence_changed_at=utcnow() - timedelta(hours=1))
        )

    await timers.heartbeat(ctx, [ana.id])

    assert await timers.expire_presence(ctx) == []


async def test_resolve_hands_the_patient_back_to_the_bot_and_frees_the_slot(ctx):
    ana = await staff(ctx.db, capacity=1)
    first = await _handed_off(ctx)
    waiting = await _handed_off(ctx)

    await transitions.resolve(ctx, first, ana)

    resolved = await _conversation(ctx.db, first)
    assert resolved.owner == Owner.BOT
    assert resolved.resolved_at is not None
    assert resolved.handed_back_at is not None
    assert ctx.bot.hand_backs == [(resolved.patient_id, transitions.HAND_BACK_INTENT)]
    assert (await _conversation(ctx.db, waiting)).assigned_attendant_id == ana.id


class _FlakyBot:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.hand_backs = []

    async def hand_back(self, ctx, patient_id, intent):
        if self.failures:
            self.failures -= 1
            raise AssistantUnavailable("hand_back: HTTP 502")
        self.hand_backs.append((patient_id, intent))

    async def close(self):
        pass


async def test_a_failing_hand_back_does_not_undo_the_resolution_and_is_retried(ctx):
    ctx.bot = _FlakyBot(failures=1)
    ana = await staff(ctx.db)
    conversation_id = await _handed_off(ctx)

    await transitions.resolve(ctx, conversation_id, ana)

    conversation = await _conversation(ctx.db, conversation_id)
    assert (conversation.owner, conversation.handed_back_at) == (Owner.BOT, None)
    assert await transitions.retry_hand_backs(ctx) == 0  # too recent: the call may be in flight
    async with ctx.db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(resolved_at=utcnow() - timedelta(minutes=2))
        )
    assert await transitions.retry_hand_backs(ctx) == 1
    assert ctx.bot.hand_backs == [(conversation.patient_id, transitions.HAND_BACK_INTENT)]
    assert await transitions.retry_hand_backs(ctx) == 0


async def test_after_resolution_the_next_message_opens_a_bot_conversation(ctx):
    ana = await staff(ctx.db)
    recorded = await patient_message(ctx.db, user="v-after")
    await transitions.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    await transitions.resolve(ctx, recorded.conversation.id, ana)

    after = await patient_message(ctx.db, "obrigado!", user="v-after")

    assert after.conversation.id != recorded.conversation.id
    assert after.conversation.owner == Owner.BOT


async def test_a_resolved_conversation_accepts_no_more_actions(ctx):
    ana = await staff(ctx.db)
    conversation_id = await _handed_off(ctx)
    await transitions.resolve(ctx, conversation_id, ana)

    with pytest.raises(transitions.ConversationClosed):
        await transitions.reply(ctx, conversation_id, ana, "oi")


async def test_reception_actions_are_recorded_typed_in_the_timeline(ctx):
    ana = await staff(ctx.db)
    conversation_id = await _handed_off(ctx)

    await transitions.record_action(
        ctx, conversation_id, ana, "exams_delivered", {"note": "Hemograma"}
    )

    async with ctx.db.session() as session:
        recorded = (await session.execute(select(AttendantAction))).scalars().all()
    assert [(a.kind, a.actor_id, a.details) for a in recorded] == [
        ("exams_delivered", ana.id, {"note": "Hemograma"})
    ]
    assert ctx.bus.of_type("action")[0]["action"]["kind"] == "exams_delivered"
    with pytest.raises(transitions.UnknownAction):
        await transitions.record_action(ctx, conversation_id, ana, "drop_table")


async def test_presence_change_is_published(ctx):
    ana = await staff(ctx.db, presence=Presence.OFFLINE)

    await transitions.set_presence(ctx, ana, Presence.PAUSED)

    async with ctx.db.session() as session:
        assert (await session.get(AttendantProfile, ana.id)).presence == Presence.PAUSED
    assert ctx.bus.of_type("presence") == [
        {"type": "presence", "attendant_id": ana.id, "presence": "pausa"}
    ]


async def _appointment(db, patient_id, *, days_ahead=3):
    async with db.session() as session:
        specialty = Specialty(name=f"Clínica {patient_id}", slug=f"clinica-{patient_id}")
        doctor = Doctor(name="Dra. Ana Carvalho", specialty=specialty)
        starts = utcnow() + timedelta(days=days_ahead)
        appointment = Appointment(
            patient_id=patient_id,
            doctor=doctor,
            specialty=specialty,
            starts_at=starts,
            ends_at=starts + timedelta(minutes=30),
        )
        session.add(appointment)
    return appointment.id


async def test_confirmar_consulta_confirms_the_patients_appointment_and_records_it(ctx):
    ana = await staff(ctx.db)
    conversation_id = await _handed_off(ctx)
    patient_id = (await _conversation(ctx.db, conversation_id)).patient_id
    appointment_id = await _appointment(ctx.db, patient_id)

    await transitions.record_action(
        ctx, conversation_id, ana, "appointment_confirmed", {"appointment_id": appointment_id}
    )

    async with ctx.db.session() as session:
        appointment = await session.get(Appointment, appointment_id)
        recorded = (await session.execute(select(AttendantAction))).scalar_one()
    assert appointment.status == AppointmentStatus.CONFIRMED
    assert (recorded.kind, recorded.details) == (
        "appointment_confirmed",
        {"appointment_id": appointment_id, "status": "confirmada"},
    )


async def test_appointment_actions_stay_within_the_conversations_patient(ctx):
    ana = await staff(ctx.db)
    conversation_id = await _handed_off(ctx)
    stranger = await patient_message(ctx.db, "oi")
    theirs = await _appointment(ctx.db, stranger.conversation.patient_id)

    with pytest.raises(transitions.NotFound):
        await transitions.record_action(
            ctx, conversation_id, ana, "appointment_cancelled", {"appointment_id": theirs}
        )
    with pytest.raises(transitions.UnknownAction):
        await transitions.record_action(ctx, conversation_id, ana, "appointment_confirmed")
    async with ctx.db.session() as session:
        assert (await session.get(Appointment, theirs)).status == AppointmentStatus.SCHEDULED
        assert (await session.execute(select(AttendantAction))).first() is None


async def test_a_change_the_agenda_refuses_is_explained_and_not_recorded(ctx):
    ana = await staff(ctx.db)
    conversation_id = await _handed_off(ctx)
    patient_id = (await _conversation(ctx.db, conversation_id)).patient_id
    upcoming = await _appointment(ctx.db, patient_id)
    await transitions.record_action(
        ctx, conversation_id, ana, "appointment_cancelled", {"appointment_id": upcoming}
    )

    with pytest.raises(transitions.Refused) as refused:
        await transitions.record_action(
            ctx, conversation_id, ana, "appointment_confirmed", {"appointment_id": upcoming}
        )
    assert refused.value.code == "agenda.error.invalid_transition"
    with pytest.raises(transitions.Refused):  # attendance is marked once the time has come
        await transitions.record_action(
            ctx, conversation_id, ana, "attended", {"appointment_id": upcoming}
        )
    async with ctx.db.session() as session:
        kinds = (await session.execute(select(AttendantAction.kind))).scalars().all()
    assert kinds == ["appointment_cancelled"]


async def test_a_patient_writing_on_another_channel_stays_with_their_attendant(ctx):
    ana = await staff(ctx.db, capacity=1)
    phone = "+5511955554444"
    await _handed_off(ctx, channel="webchat", phone=phone)
    whatsapp = await patient_message(
        ctx.db, "mandei por aqui também", channel="whatsapp", user="5511955554444", phone=phone
    )
    stranger = await patient_message(ctx.db, "oi")

    assert await transitions.join_open_episode(ctx, whatsapp.conversation.id) is True
    assert await transitions.join_open_episode(ctx, stranger.conversation.id) is False

    joined = await _conversation(ctx.db, whatsapp.conversation.id)
    assert (joined.owner, joined.assigned_attendant_id) == (Owner.ATTENDANT, ana.id)
    assert (await _conversation(ctx.db, stranger.conversation.id)).owner == Owner.BOT


async def test_a_patient_waiting_in_the_queue_keeps_one_place_across_channels(ctx):
    phone = "+5511933332222"
    webchat = await _handed_off(ctx, channel="webchat", phone=phone)
    newer = await _handed_off(ctx)
    whatsapp = await patient_message(
        ctx.db, "oi?", channel="whatsapp", user="5511933332222", phone=phone
    )
    await transitions.join_open_episode(ctx, whatsapp.conversation.id)
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)

    await transitions.set_presence(ctx, bruno, Presence.ONLINE)

    for conversation_id in (webchat, whatsapp.conversation.id):
        assert (await _conversation(ctx.db, conversation_id)).assigned_attendant_id == bruno.id
    assert (await _conversation(ctx.db, newer)).owner == Owner.QUEUED


async def _on_two_channels(ctx, phone):
    """A patient with a person on webchat who then wrote on WhatsApp too (joined)."""
    webchat = await _handed_off(ctx, channel="webchat", phone=phone)
    whatsapp = await patient_message(
        ctx.db, "escrevi aqui também", channel="whatsapp", user=phone.lstrip("+"), phone=phone
    )
    assert await transitions.join_open_episode(ctx, whatsapp.conversation.id)
    return webchat, whatsapp.conversation.id


async def _holders(db, *conversation_ids):
    return [
        ((c := await _conversation(db, i)).owner, c.assigned_attendant_id) for i in conversation_ids
    ]


async def test_resolving_closes_every_channel_of_the_patient_and_hands_back_once(ctx):
    ana = await staff(ctx.db, capacity=1)
    webchat, whatsapp = await _on_two_channels(ctx, "+5511944441111")
    waiting = await _handed_off(ctx)

    await transitions.resolve(ctx, webchat, ana)

    for conversation_id in (webchat, whatsapp):
        closed = await _conversation(ctx.db, conversation_id)
        assert (closed.owner, closed.status) == (Owner.BOT, "closed")
        assert closed.handed_back_at is not None
    assert len(ctx.bot.hand_backs) == 1  # one satisfaction question
    assert await transitions.retry_hand_backs(ctx) == 0
    assert (await _conversation(ctx.db, waiting)).assigned_attendant_id == ana.id
    # The patient's next WhatsApp message goes to the bot, not to Ana.
    after = await patient_message(
        ctx.db, "obrigado", channel="whatsapp", user="5511944441111", phone="+5511944441111"
    )
    assert after.conversation.id != whatsapp
    assert await transitions.join_open_episode(ctx, after.conversation.id) is False


async def test_a_failed_hand_back_of_two_channels_is_retried_once_for_the_patient(ctx):
    ctx.bot = _FlakyBot(failures=1)
    ana = await staff(ctx.db)
    webchat, whatsapp = await _on_two_channels(ctx, "+5511944442222")
    await transitions.resolve(ctx, whatsapp, ana)
    async with ctx.db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id.in_([webchat, whatsapp]))
            .values(resolved_at=utcnow() - timedelta(minutes=2))
        )

    assert await transitions.retry_hand_backs(ctx) == 1

    assert len(ctx.bot.hand_backs) == 1
    assert await transitions.retry_hand_backs(ctx) == 0


async def test_a_transfer_moves_the_patient_on_every_channel(ctx):
    ana = await staff(ctx.db)
    webchat, whatsapp = await _on_two_channels(ctx, "+5511944443333")
    bruno = await staff(ctx.db)

    await transitions.transfer(ctx, whatsapp, ana, bruno.id)

    assert await _holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, bruno.id)] * 2
    with pytest.raises(transitions.NotOwner):
        await transitions.reply(ctx, webchat, ana, "oi")
    # Told once, on the channel the transfer was made from.
    assert ctx.senders["whatsapp"].texts == [t("patient.transferred", attendant=bruno.name)]
    assert t("patient.transferred", attendant=bruno.name) not in ctx.senders["webchat"].texts


async def test_a_manager_reassigning_or_taking_over_moves_every_channel(ctx):
    await staff(ctx.db)
    webchat, whatsapp = await _on_two_channels(ctx, "+5511944444444")
    bruno = await staff(ctx.db)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)

    await transitions.reassign(ctx, webchat, marta, bruno.id)
    assert await _holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, bruno.id)] * 2

    await transitions.take_over(ctx, whatsapp, marta)
    assert await _holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, marta.id)] * 2
    assert await _kinds(ctx.db, whatsapp) == ["linked", "reassigned", "taken_over"]


async def test_a_manager_returning_a_patient_to_the_queue_returns_every_channel(ctx):
    ana = await staff(ctx.db)
    webchat, whatsapp = await _on_two_channels(ctx, "+5511944445555")
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    await transitions.set_presence(ctx, ana, Presence.PAUSED)

    await transitions.reassign(ctx, webchat, marta, None)

    assert await _holders(ctx.db, webchat, whatsapp) == [(Owner.QUEUED, None)] * 2
    bruno = await staff(ctx.db, presence=Presence.OFFLINE)
    await transitions.set_presence(ctx, bruno, Presence.ONLINE)
    assert await _holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, bruno.id)] * 2


async def test_taking_a_patient_from_the_queue_takes_every_channel(ctx):
    webchat, whatsapp = await _on_two_channels(ctx, "+5511944446666")
    bruno = await staff(ctx.db, presence=Presence.PAUSED)

    await transitions.take(ctx, whatsapp, bruno)

    assert await _holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, bruno.id)] * 2


async def test_a_reply_on_one_channel_keeps_the_other_from_being_requeued_as_unanswered(ctx):
    ctx.settings = replace(ctx.settings, reassign_after_seconds=60)
    ana = await staff(ctx.db)
    webchat, whatsapp = await _on_two_channels(ctx, "+5511944447777")
    await transitions.reply(ctx, webchat, ana, "Estou vendo aqui.")
    for conversation_id in (webchat, whatsapp):
        await _age(ctx.db, conversation_id, 120)

    assert await timers.requeue_unanswered(ctx) == []

    assert await _holders(ctx.db, webchat, whatsapp) == [(Owner.ATTENDANT, ana.id)] * 2
