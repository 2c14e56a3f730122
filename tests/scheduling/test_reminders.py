"""Reminders go out once, at the right time, on a channel the patient has, with the reply
buttons the bot understands; cancelled or moved appointments are never reminded; a worker
dying mid-send never causes a second delivery."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from channels.base import Inbound
from core.context import DeliveryFailed
from handoff.transitions import talking
from messaging.inbound import Inbox
from models import (
    AuthorKind,
    ChannelIdentity,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Message,
    Owner,
    Reminder,
    ReminderStatus,
)
from scheduling import appointments, reminders
from scheduling.reminders import (
    LEASE,
    ReminderNotSent,
    dispatch_due,
    last_reminded,
    plan_reminders,
    send_now,
)
from tests import factories
from tests.factories import clinic_rules
from tests.fakes import FakeAssistant
from tests.scheduling.conftest import make_patient, sp

NOW = sp(2026, 3, 9, 10)  # Monday
STARTS = sp(2026, 3, 12, 14)  # Thursday 14h with Dr. Paulo Mendes
DAY_BEFORE = sp(2026, 3, 11, 14)
TWO_HOURS_BEFORE = sp(2026, 3, 12, 12)


class WorkerKilled(BaseException):
    """What SIGKILL does to a worker: nothing after this point runs."""


class FakeProvider:
    """A channel's provider: records every request. An idempotent provider (deduplicating
    on our message id, the idempotency key) delivers a repeated id once."""

    def __init__(self, *, idempotent=False, fail_with=None, die_after_request=False):
        self.idempotent = idempotent
        self.fail_with = fail_with
        self.die_after_request = die_after_request
        self.requests: list[Message] = []

    async def deliver(self, message, identity, reach=None):
        self.requests.append(message)
        if self.die_after_request:
            self.die_after_request = False
            raise WorkerKilled
        if self.fail_with:
            raise DeliveryFailed(self.fail_with)
        return f"provider-{message.id}"

    @property
    def delivered(self) -> list[Message]:
        if not self.idempotent:
            return [] if self.fail_with else self.requests
        return list({m.id: m for m in self.requests}.values())


def at(moment):
    return lambda: moment


@pytest.fixture
def providers(ctx):
    ctx.senders = {
        "whatsapp": FakeProvider(),
        "email": FakeProvider(),
        "webchat": FakeProvider(),
    }
    return ctx.senders


async def _booked(ctx, agenda, patient, starts_at=STARTS, doctor="Paulo"):
    appointment = await appointments.book(
        ctx.db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=agenda.doctor(doctor).id,
        starts_at=starts_at,
        channel="whatsapp",
        now=NOW,
        self_service=False,
    )
    await plan_reminders(ctx, clock=at(NOW))
    return appointment


async def _reminders(ctx, appointment_id):
    async with ctx.db.session() as session:
        query = (
            select(Reminder)
            .where(Reminder.appointment_id == appointment_id)
            .order_by(Reminder.offset_minutes.desc())
        )
        return (await session.execute(query)).scalars().all()


async def test_booking_plans_a_reminder_a_day_before_and_two_hours_before(ctx, agenda):
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db))

    planned = await _reminders(ctx, appointment.id)

    assert [(r.offset_minutes, r.due_at, r.status) for r in planned] == [
        (1440, DAY_BEFORE, ReminderStatus.PENDING),
        (120, TWO_HOURS_BEFORE, ReminderStatus.PENDING),
    ]
    assert await plan_reminders(ctx, clock=at(NOW)) == 0


async def test_nothing_goes_out_before_it_is_due(ctx, agenda, providers):
    await _booked(ctx, agenda, await make_patient(ctx.db))

    await dispatch_due(ctx, clock=at(DAY_BEFORE - timedelta(minutes=1)))

    assert providers["whatsapp"].requests == []


async def test_a_due_reminder_goes_out_once_with_confirm_reschedule_and_cancel(
    ctx, agenda, providers
):
    patient = await make_patient(ctx.db, "Maria da Silva")
    appointment = await _booked(ctx, agenda, patient)

    await dispatch_due(ctx, clock=at(DAY_BEFORE))
    await dispatch_due(ctx, clock=at(DAY_BEFORE + timedelta(minutes=5)))

    [message] = providers["whatsapp"].requests
    assert message.text == (
        "Olá, Maria! Lembrete da sua consulta na Clínica Vida Plena: amanhã, quinta-feira "
        "(12/03), às 14:00, com Dr. Paulo Mendes. Você confirma sua presença?"
    )
    assert "Clínica Geral" not in message.text  # no specialty on a lock screen
    n = appointment.id
    assert message.buttons == [
        {"title": "Confirmar", "payload": f'/confirmar_presenca{{"appointment_id":"{n}"}}'},
        {"title": "Remarcar", "payload": f'/remarcar_consulta{{"appointment_id":"{n}"}}'},
        {"title": "Cancelar", "payload": f'/cancelar_consulta{{"appointment_id":"{n}"}}'},
    ]
    assert message.author_kind == AuthorKind.BOT
    assert message.template == {
        "purpose": "reminder",
        "parameters": ["Maria", "Clínica Vida Plena", "12/03/2026", "14:00", "Dr. Paulo Mendes"],
    }
    first = (await _reminders(ctx, appointment.id))[0]
    assert (first.status, first.channel, first.message_id) == (
        ReminderStatus.SENT,
        "whatsapp",
        message.id,
    )
    assert ctx.bus.of_type("message")[0]["message"]["id"] == message.id


async def test_the_reminder_buttons_are_trusted_when_the_patient_taps_them(ctx, agenda, providers):
    patient = await make_patient(ctx.db)
    await _booked(ctx, agenda, patient)

    await dispatch_due(ctx, clock=at(DAY_BEFORE))

    [message] = providers["whatsapp"].requests
    async with ctx.db.session() as session:
        conversation = await session.get(Conversation, message.conversation_id)
    assert (conversation.status, conversation.owner) == (ConversationStatus.OPEN, Owner.BOT)
    async with ctx.db.session() as session:
        identity = await session.get(ChannelIdentity, conversation.channel_identity_id)
    assistant = FakeAssistant()
    inbox = Inbox(ctx, assistant, {}, talking.join_open_episode)
    tapped = message.buttons[0]
    await inbox.accept(
        Inbound(
            channel="whatsapp",
            external_user_id=identity.external_id,
            provider_message_id="wamid.tapped-reminder-button",
            text=tapped["title"],
            payload=tapped["payload"],
        )
    )
    await inbox.drain()
    assert assistant.texts == [tapped["payload"]]  # the bot reads the payload, not the title


async def test_the_same_day_reminder_follows_and_mentions_today(ctx, agenda, providers):
    await _booked(ctx, agenda, await make_patient(ctx.db))

    await dispatch_due(ctx, clock=at(DAY_BEFORE))
    await dispatch_due(ctx, clock=at(TWO_HOURS_BEFORE))

    assert [m.text.split(": ")[1].split(",")[0] for m in providers["whatsapp"].requests] == [
        "amanhã",
        "hoje",
    ]


async def test_the_preferred_channel_failing_falls_back_to_the_next_one(ctx, agenda, providers):
    providers["whatsapp"].fail_with = "(#131026) Message undeliverable"
    patient = await make_patient(ctx.db, channels=("whatsapp", "webchat", "email"))
    appointment = await _booked(ctx, agenda, patient)

    await dispatch_due(ctx, clock=at(DAY_BEFORE))

    assert len(providers["whatsapp"].requests) == 1
    [email] = providers["email"].requests
    assert providers["webchat"].requests == []  # e-mail comes before the site chat
    [ics] = email.attachments
    assert ics["kind"] == "ics" and ics["filename"] == "consulta.ics"
    assert "DTSTART:20260312T170000Z\r\n" in ics["content"]
    assert "Dr. Paulo Mendes" in ics["content"]
    reminder = (await _reminders(ctx, appointment.id))[0]
    assert (reminder.status, reminder.channel) == (ReminderStatus.SENT, "email")
    async with ctx.db.session() as session:
        failed = await session.get(Message, providers["whatsapp"].requests[0].id)
    assert failed.delivery_status == DeliveryStatus.FAILED


async def test_only_channels_the_patient_is_known_on_are_tried(ctx, agenda, providers):
    patient = await make_patient(ctx.db, channels=("webchat",), preferred="whatsapp")
    await _booked(ctx, agenda, patient)

    await dispatch_due(ctx, clock=at(DAY_BEFORE))

    assert providers["whatsapp"].requests == []
    assert len(providers["webchat"].requests) == 1


async def test_when_every_channel_fails_the_reminder_is_marked_failed(ctx, agenda, providers):
    providers["whatsapp"].fail_with = "(#131026) Message undeliverable"
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db))

    await dispatch_due(ctx, clock=at(DAY_BEFORE))

    reminder = (await _reminders(ctx, appointment.id))[0]
    assert reminder.status == ReminderStatus.FAILED
    assert reminder.error == "undeliverable: (#131026) Message undeliverable"


async def test_a_cancelled_appointment_is_never_reminded(ctx, agenda, providers):
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db))
    await appointments.cancel(ctx.db, appointment.id, channel="whatsapp", now=NOW)

    await dispatch_due(ctx, clock=at(TWO_HOURS_BEFORE))

    assert providers["whatsapp"].requests == []
    assert {r.status for r in await _reminders(ctx, appointment.id)} == {ReminderStatus.CANCELLED}


async def test_a_rescheduled_appointment_is_reminded_only_of_its_new_time(ctx, agenda, providers):
    old = await _booked(ctx, agenda, await make_patient(ctx.db))
    new = await appointments.reschedule(
        ctx.db,
        clinic_rules(),
        old.id,
        starts_at=sp(2026, 3, 13, 15),
        channel="whatsapp",
        now=NOW,
        self_service=False,
    )
    await plan_reminders(ctx, clock=at(NOW))

    await dispatch_due(ctx, clock=at(sp(2026, 3, 13, 13)))

    texts = [m.text for m in providers["whatsapp"].requests]
    assert len(texts) == 1 and "às 15:00" in texts[0]
    assert providers["whatsapp"].requests[0].buttons[0]["payload"].endswith(f'"{new.id}"}}')


async def test_a_cancellation_after_the_worker_claimed_the_reminder_still_wins(
    ctx, agenda, providers
):
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db))
    claimed = await reminders._settle_and_claim(
        ctx, "worker-a", DAY_BEFORE, LEASE, sent=[], wanted=10
    )
    await appointments.cancel(ctx.db, appointment.id, channel="whatsapp", now=NOW)

    await reminders._dispatch(ctx, claimed[0], "worker-a", at(DAY_BEFORE), LEASE)

    assert providers["whatsapp"].requests == []


async def test_a_reminder_due_in_the_night_waits_for_eight_in_the_morning(ctx, agenda, providers):
    # Friday 10h: the 24 h reminder is due Thursday 10h, but the worker only runs again at
    # 21h10, in quiet hours.
    patient = await make_patient(ctx.db)
    appointment = await _booked(ctx, agenda, patient, starts_at=sp(2026, 3, 13, 10), doctor="Ana")
    [day_before, _] = await _reminders(ctx, appointment.id)
    assert day_before.due_at == sp(2026, 3, 12, 10)

    await dispatch_due(ctx, clock=at(sp(2026, 3, 12, 21, 10)))
    deferred = (await _reminders(ctx, appointment.id))[0]
    await dispatch_due(ctx, clock=at(sp(2026, 3, 13, 8)))

    assert deferred.status == ReminderStatus.PENDING
    assert deferred.due_at == sp(2026, 3, 13, 8)
    assert len(providers["whatsapp"].requests) == 1


async def test_after_an_outage_only_the_closest_reminder_goes_out(ctx, agenda, providers):
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db))

    await dispatch_due(ctx, clock=at(TWO_HOURS_BEFORE + timedelta(minutes=30)))

    assert len(providers["whatsapp"].requests) == 1
    assert [
        (r.offset_minutes, r.status, r.error) for r in await _reminders(ctx, appointment.id)
    ] == [
        (1440, ReminderStatus.CANCELLED, "superseded"),
        (120, ReminderStatus.SENT, None),
    ]


async def test_no_reminder_for_a_patient_who_opted_out(ctx, agenda, providers):
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db, opt_in=False))

    await dispatch_due(ctx, clock=at(DAY_BEFORE))

    assert providers["whatsapp"].requests == []
    assert (await _reminders(ctx, appointment.id))[0].error == "opted_out"


async def test_a_reminder_whose_appointment_has_passed_is_dropped(ctx, agenda, providers):
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db))

    await dispatch_due(ctx, clock=at(STARTS + timedelta(minutes=1)))

    assert providers["whatsapp"].requests == []
    assert {r.error for r in await _reminders(ctx, appointment.id)} == {"appointment_inactive"}


async def test_a_typed_reply_is_about_the_appointment_last_reminded_of(ctx, agenda, providers):
    patient = await make_patient(ctx.db)
    reminded = await _booked(ctx, agenda, patient)
    await _booked(ctx, agenda, patient, starts_at=sp(2026, 3, 20, 14))  # not reminded yet

    await dispatch_due(ctx, clock=at(DAY_BEFORE))
    async with ctx.db.session() as session:
        about = await last_reminded(session, patient.id, now=DAY_BEFORE)
    await appointments.cancel(ctx.db, reminded.id, channel="whatsapp", now=DAY_BEFORE)
    async with ctx.db.session() as session:
        after_cancelling = await last_reminded(session, patient.id, now=DAY_BEFORE)

    assert about.id == reminded.id and about.doctor.name == "Dr. Paulo Mendes"
    assert after_cancelling is None


# --- Exactly once ------------------------------------------------------------------------


async def test_a_worker_killed_after_the_provider_call_causes_no_second_delivery(
    ctx, agenda, providers
):
    providers["whatsapp"].idempotent = True
    providers["whatsapp"].die_after_request = True
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db))

    with pytest.raises(WorkerKilled):
        await dispatch_due(ctx, worker_id="worker-a", clock=at(DAY_BEFORE))
    # While the dead worker's lease runs, nobody else touches the row.
    await dispatch_due(ctx, worker_id="worker-b", clock=at(DAY_BEFORE + LEASE / 2))
    assert len(providers["whatsapp"].requests) == 1
    await dispatch_due(ctx, worker_id="worker-b", clock=at(DAY_BEFORE + LEASE * 2))

    requests = providers["whatsapp"].requests
    assert len(requests) == 2 and requests[0].id == requests[1].id  # same idempotency key
    assert len(providers["whatsapp"].delivered) == 1
    reminder = (await _reminders(ctx, appointment.id))[0]
    assert (reminder.status, reminder.message_id) == (ReminderStatus.SENT, requests[0].id)


async def test_without_an_idempotent_provider_an_interrupted_send_is_never_repeated(
    ctx, agenda, providers
):
    providers["whatsapp"].die_after_request = True
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db))

    with pytest.raises(WorkerKilled):
        await dispatch_due(ctx, worker_id="worker-a", clock=at(DAY_BEFORE))
    await dispatch_due(ctx, worker_id="worker-b", clock=at(DAY_BEFORE + LEASE * 2))

    assert len(providers["whatsapp"].requests) == 1
    reminder = (await _reminders(ctx, appointment.id))[0]
    assert (reminder.status, reminder.error) == (ReminderStatus.FAILED, "uncertain_delivery")


async def test_a_lease_expiring_after_the_delivery_was_recorded_sends_nothing_again(
    ctx, agenda, providers, monkeypatch
):
    async def killed(*_args):
        raise WorkerKilled

    appointment = await _booked(ctx, agenda, await make_patient(ctx.db))
    with monkeypatch.context() as patch:
        patch.setattr(reminders, "_mark_sent", killed)
        with pytest.raises(WorkerKilled):
            await dispatch_due(ctx, worker_id="worker-a", clock=at(DAY_BEFORE))

    await dispatch_due(ctx, worker_id="worker-b", clock=at(DAY_BEFORE + LEASE * 2))

    assert len(providers["whatsapp"].requests) == 1
    assert (await _reminders(ctx, appointment.id))[0].status == ReminderStatus.SENT


async def test_two_workers_sending_at_once_deliver_each_reminder_exactly_once(
    ctx, agenda, providers
):
    patients = [await make_patient(ctx.db, f"Paciente {n}") for n in range(10)]
    for n, patient in enumerate(patients):  # Thursday 13h to 17h30
        await _booked(
            ctx, agenda, patient, starts_at=sp(2026, 3, 12, 13) + timedelta(minutes=30 * n)
        )

    await asyncio.gather(
        dispatch_due(ctx, worker_id="worker-a", clock=at(TWO_HOURS_BEFORE), batch=3),
        dispatch_due(ctx, worker_id="worker-b", clock=at(TWO_HOURS_BEFORE), batch=3),
    )

    # Every 24 h reminder is due, and the 2 h ones of 13h to 14h, which supersede theirs.
    sent = [m.buttons[0]["payload"] for m in providers["whatsapp"].requests]
    assert len(sent) == len(set(sent)) == 10


# --- Staff: "Enviar lembrete" ------------------------------------------------------------


async def test_staff_can_send_a_reminder_now_recorded_like_the_automatic_ones(
    ctx, agenda, providers
):
    staff = await factories.staff(ctx.db)
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db))
    moment = sp(2026, 3, 10, 15)

    message = await send_now(ctx, appointment.id, actor_id=staff.id, clock=at(moment))
    double_click = await send_now(ctx, appointment.id, actor_id=staff.id, clock=at(moment))

    assert double_click.id == message.id
    assert [m.id for m in providers["whatsapp"].requests] == [message.id]
    manual = next(r for r in await _reminders(ctx, appointment.id) if r.requested_by_id)
    assert (manual.requested_by_id, manual.status, manual.offset_minutes) == (
        staff.id,
        ReminderStatus.SENT,
        47 * 60,  # Tuesday 15h to Thursday 14h
    )


@pytest.mark.parametrize(
    ("moment", "reason"),
    [
        pytest.param(sp(2026, 3, 10, 22), "quiet_hours", id="at-night"),
        pytest.param(sp(2026, 3, 12, 14, 30), "appointment_inactive", id="after-it-started"),
    ],
)
async def test_staff_reminders_are_refused_at_night_and_after_the_appointment(
    ctx, agenda, providers, moment, reason
):
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db))

    with pytest.raises(ReminderNotSent) as refused:
        await send_now(ctx, appointment.id, actor_id=None, clock=at(moment))

    assert refused.value.reason == reason
    assert providers["whatsapp"].requests == []


async def test_a_staff_reminder_nobody_can_receive_says_why(ctx, agenda, providers):
    appointment = await _booked(ctx, agenda, await make_patient(ctx.db, channels=("telegram",)))

    with pytest.raises(ReminderNotSent) as refused:
        await send_now(ctx, appointment.id, actor_id=None, clock=at(sp(2026, 3, 10, 15)))

    assert refused.value.reason == "no_channel"
