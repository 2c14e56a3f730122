"""Outbound retries: temporary failures are retried on a schedule by the worker's job, final
ones and exhausted retries fail the message where staff see it, and no retry sends twice."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.context import DeliveryFailed
from messaging.history import record_outbound
from messaging.outbound import MAX_ATTEMPTS, RETRY_DELAYS, Sealed, send
from messaging.retries import retry_due_deliveries
from models import AuthorKind, Conversation, DeliveryStatus, Doctor, Message
from scheduling import appointments
from scheduling.reminders import dispatch_due, plan_reminders
from scripts.demo_clinic import add_agenda
from tests.factories import clinic_rules, patient_message
from tests.scheduling.conftest import make_patient, sp


class FlakySender:
    """Fails with each of `failures` in turn, then delivers."""

    def __init__(self, *failures: DeliveryFailed, pause: float = 0) -> None:
        self.failures = list(failures)
        self.pause = pause
        self.calls = 0

    async def deliver(self, message, identity, reach=None):
        self.calls += 1
        await asyncio.sleep(self.pause)
        if self.failures:
            raise self.failures.pop(0)
        return f"provider-{message.id}"


def busy() -> DeliveryFailed:
    return DeliveryFailed("whatsapp: HTTP 503, try later", retryable=True)


async def _reply(ctx, sender) -> Message:
    ctx.senders = {**ctx.senders, "whatsapp": sender}
    recorded = await patient_message(ctx.db, "oi", channel="whatsapp", phone="+5511987654321")
    return await send(ctx, recorded.conversation.id, text="Olá!", author_kind=AuthorKind.BOT)


async def _stored(ctx, message_id: int) -> Message:
    async with ctx.db.session() as session:
        return await session.get(Message, message_id)


async def _age(ctx, message_id: int, seconds: float) -> None:
    stored = await _stored(ctx, message_id)
    async with ctx.db.session() as session:
        await session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(created_at=stored.created_at - timedelta(seconds=seconds))
        )


async def test_a_temporary_failure_stays_pending_with_its_reason_and_is_retried_when_due(ctx):
    sender = FlakySender(busy())
    message = await _reply(ctx, sender)

    stored = await _stored(ctx, message.id)
    assert (stored.delivery_status, stored.attempts) == (DeliveryStatus.PENDING, 1)
    assert stored.error == "whatsapp: HTTP 503, try later"
    assert await retry_due_deliveries(ctx) == 0  # not due yet

    await _age(ctx, message.id, RETRY_DELAYS[0])
    assert await retry_due_deliveries(ctx) == 1

    stored = await _stored(ctx, message.id)
    assert (stored.delivery_status, stored.attempts, stored.error) == (DeliveryStatus.SENT, 2, None)
    assert stored.provider_message_id == f"provider-{message.id}"


async def test_retries_back_off_and_the_last_failure_is_final_and_shown(ctx):
    sender = FlakySender(*[busy() for _ in range(MAX_ATTEMPTS)])
    message = await _reply(ctx, sender)

    for attempt in range(1, MAX_ATTEMPTS):
        await _age(ctx, message.id, RETRY_DELAYS[attempt - 1])
        assert await retry_due_deliveries(ctx) == 1
        assert await retry_due_deliveries(ctx) == 0  # the next one waits longer

    stored = await _stored(ctx, message.id)
    assert (stored.delivery_status, stored.attempts) == (DeliveryStatus.FAILED, MAX_ATTEMPTS)
    assert sender.calls == MAX_ATTEMPTS
    assert ctx.bus.of_type("message")[-1]["message"]["delivery_status"] == "failed"


async def test_a_refusal_fails_at_once_and_is_never_retried(ctx):
    sender = FlakySender(DeliveryFailed("whatsapp: outside the 24 h window"))
    message = await _reply(ctx, sender)
    await _age(ctx, message.id, 3600)

    assert await retry_due_deliveries(ctx) == 0
    stored = await _stored(ctx, message.id)
    assert stored.delivery_status == DeliveryStatus.FAILED
    assert stored.error == "whatsapp: outside the 24 h window"


async def test_a_crashing_sender_is_treated_as_a_temporary_failure(ctx):
    class Broken:
        async def deliver(self, message, identity, reach=None):
            raise KeyError("messages")

    message = await _reply(ctx, Broken())

    stored = await _stored(ctx, message.id)
    assert (stored.delivery_status, stored.error) == (DeliveryStatus.PENDING, "unexpected KeyError")


async def test_a_message_whose_process_died_before_sending_is_sent_by_the_worker(ctx):
    recorded = await patient_message(ctx.db, "oi", channel="whatsapp", phone="+5511987654322")
    sender = FlakySender()
    ctx.senders = {**ctx.senders, "whatsapp": sender}
    async with ctx.db.session() as session:
        conversation = await session.get(Conversation, recorded.conversation.id)
        orphan = await record_outbound(
            session, conversation, text="Olá!", author_kind=AuthorKind.BOT
        )

    assert await retry_due_deliveries(ctx) == 0  # its own process may still be sending it
    await _age(ctx, orphan.id, 61)
    assert await retry_due_deliveries(ctx) == 1
    assert (await _stored(ctx, orphan.id)).delivery_status == DeliveryStatus.SENT


async def test_a_sealed_message_is_tried_once_and_never_sent_again_by_the_worker(ctx):
    sender = FlakySender(busy())
    ctx.senders = {**ctx.senders, "whatsapp": sender}
    recorded = await patient_message(ctx.db, "oi", channel="whatsapp", phone="+5511987654323")
    code = Sealed(text="Seu código é 123456.")

    message = await send(
        ctx,
        recorded.conversation.id,
        text="Código enviado.",
        author_kind=AuthorKind.SYSTEM,
        sealed=code,
    )
    await _age(ctx, message.id, 3600)

    assert await retry_due_deliveries(ctx) == 0
    stored = await _stored(ctx, message.id)
    assert (stored.delivery_status, stored.text, sender.calls) == (
        DeliveryStatus.FAILED,
        "Código enviado.",
        1,
    )


async def test_two_workers_retrying_at_once_send_the_message_once(ctx):
    sender = FlakySender(busy(), pause=0.2)
    message = await _reply(ctx, sender)
    await _age(ctx, message.id, RETRY_DELAYS[0])

    await asyncio.gather(retry_due_deliveries(ctx), retry_due_deliveries(ctx))

    assert sender.calls == 2  # the first attempt and exactly one retry
    assert (await _stored(ctx, message.id)).delivery_status == DeliveryStatus.SENT


async def test_a_last_attempt_interrupted_by_a_crash_is_failed_eventually(ctx):
    message = await _reply(ctx, FlakySender())
    async with ctx.db.session() as session:
        await session.execute(
            update(Message)
            .where(Message.id == message.id)
            .values(delivery_status=DeliveryStatus.PENDING, attempts=MAX_ATTEMPTS)
        )
    await _age(ctx, message.id, sum(RETRY_DELAYS) + 301)

    await retry_due_deliveries(ctx)

    stored = await _stored(ctx, message.id)
    assert stored.delivery_status == DeliveryStatus.FAILED
    assert stored.error == f"gave up after {MAX_ATTEMPTS} attempts"


async def test_an_attempt_that_ended_without_its_outcome_is_never_sent_again(ctx):
    message = await _reply(ctx, FlakySender(busy()))  # a known failure: retried when due
    sender = FlakySender()
    ctx.senders = {**ctx.senders, "whatsapp": sender}
    async with ctx.db.session() as session:  # the retry's process died after claiming it
        await session.execute(
            update(Message).where(Message.id == message.id).values(attempts=2, error=None)
        )
    await _age(ctx, message.id, sum(RETRY_DELAYS))

    assert await retry_due_deliveries(ctx) == 0
    assert sender.calls == 0  # the provider may have taken it: never twice
    await _age(ctx, message.id, 301)
    await retry_due_deliveries(ctx)
    stored = await _stored(ctx, message.id)
    assert stored.delivery_status == DeliveryStatus.FAILED
    assert "interrupted" in stored.error


class WorkerKilled(BaseException):
    """What SIGKILL does to a worker mid-send: nothing after this point runs."""


async def _remind(ctx, whatsapp) -> FlakySender:
    """A reminder due for a patient on WhatsApp and e-mail; returns the e-mail sender."""
    async with ctx.db.session() as session:
        add_agenda(session, [2026])
    async with ctx.db.session() as session:
        query = select(Doctor).where(Doctor.name.contains("Paulo"))  # Thursdays at 14h
        doctor = (await session.execute(query)).scalar_one()
    patient = await make_patient(ctx.db, channels=("whatsapp", "email"))
    email = FlakySender()
    ctx.senders = {**ctx.senders, "whatsapp": whatsapp, "email": email}
    booked_at = sp(2026, 3, 9, 10)
    await appointments.book(
        ctx.db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=doctor.id,
        starts_at=sp(2026, 3, 12, 14),
        channel="whatsapp",
        now=booked_at,
        self_service=False,
    )
    await plan_reminders(ctx, clock=lambda: booked_at)
    await dispatch_due(ctx, clock=lambda: sp(2026, 3, 11, 14))
    return email


async def _whatsapp_message(ctx) -> Message:
    async with ctx.db.session() as session:
        query = select(Message).where(Message.channel == "whatsapp")
        return (await session.execute(query)).scalar_one()


async def test_a_reminder_falls_back_to_another_channel_at_once_instead_of_waiting(ctx):
    whatsapp = FlakySender(busy())

    email = await _remind(ctx, whatsapp)

    assert (whatsapp.calls, email.calls) == (1, 1)
    assert (await _whatsapp_message(ctx)).delivery_status == DeliveryStatus.FAILED


async def test_a_reminder_interrupted_mid_send_is_left_to_the_reminders_own_recovery(ctx):
    class Killed(FlakySender):
        async def deliver(self, message, identity, reach=None):
            self.calls += 1
            raise WorkerKilled

    whatsapp = Killed()
    with pytest.raises(WorkerKilled):
        await _remind(ctx, whatsapp)
    interrupted = await _whatsapp_message(ctx)
    assert (interrupted.delivery_status, interrupted.attempts) == (DeliveryStatus.PENDING, 1)
    await _age(ctx, interrupted.id, 3600)

    assert await retry_due_deliveries(ctx) == 0
    assert whatsapp.calls == 1
