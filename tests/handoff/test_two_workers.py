"""Two workers (each its own `Database` engines) running the periodic jobs at once on one
PostgreSQL database: a queued patient is assigned once, a timer fires once, a retry is sent
once (processes/worker.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.context import Context
from core.settings import Settings
from handoff.transitions import listeners, resolution
from messaging.outbound import send
from models import (
    AttendantProfile,
    AuthorKind,
    Conversation,
    DeliveryStatus,
    HandoffEvent,
    HandoffKind,
    Message,
    Presence,
    utcnow,
)
from models.db import Database
from processes.worker import JOBS
from tests.factories import staff
from tests.fakes import RecordingBus, RecordingSender
from tests.handoff.steps import FlakyBot, handed_off, read_conversation

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


class SlowSender(RecordingSender):
    """A provider slow enough for two workers' runs to overlap."""

    async def deliver(self, message, identity, reach=None):
        await asyncio.sleep(0.2)
        return await super().deliver(message, identity)


class SlowBot(FlakyBot):
    async def hand_back(self, ctx, patient_id, intent):
        await asyncio.sleep(0.2)
        await super().hand_back(ctx, patient_id, intent)


@pytest.fixture
async def workers(settings: Settings) -> AsyncIterator[list[Context]]:
    started = []
    for _ in range(2):
        ctx = Context(
            settings=settings,
            db=Database(settings.database_url),
            bus=RecordingBus(),
            senders={"webchat": SlowSender(), "whatsapp": SlowSender()},
            bot=SlowBot(failures=0),
        )
        listeners.listen(ctx)
        started.append(ctx)
    yield started
    for ctx in started:
        await ctx.db.dispose()


async def both_run(job_name: str, workers: list[Context]) -> None:
    [job] = [job for job in JOBS if job.name == job_name]
    await asyncio.gather(*(job.run_once(ctx) for ctx in workers for _ in range(2)))


def sent(workers: list[Context]) -> list[str]:
    return [text for ctx in workers for text in ctx.senders["webchat"].texts]


async def test_a_queued_patient_is_assigned_once_by_two_workers(ctx, workers):
    ana = await staff(ctx.db, presence=Presence.OFFLINE)
    waiting = await handed_off(ctx)
    async with ctx.db.session() as session:  # back at work, with no event to say so
        await session.execute(update(AttendantProfile).values(presence=Presence.ONLINE))

    await both_run("queue distribution", workers)

    assert (await read_conversation(ctx.db, waiting)).assigned_attendant_id == ana.id
    async with ctx.db.session() as session:
        kinds = (await session.execute(select(HandoffEvent.kind))).scalars().all()
    assert list(kinds).count(HandoffKind.ASSIGNED) == 1
    assert len([text for text in sent(workers) if ana.name in text]) == 1


async def test_a_hand_back_timer_fires_once_with_two_workers(ctx, workers):
    ctx.bot = FlakyBot(failures=1)  # the hand-back at resolution does not get through
    ana = await staff(ctx.db)
    conversation_id = await handed_off(ctx)
    await resolution.resolve(ctx, conversation_id, ana)
    async with ctx.db.session() as session:
        await session.execute(
            update(Conversation).values(resolved_at=utcnow() - timedelta(minutes=2))
        )

    await both_run("handoff timers", workers)

    patient = (await read_conversation(ctx.db, conversation_id)).patient_id
    handed_back = [hand_back for w in workers for hand_back in w.bot.hand_backs]
    assert handed_back == [(patient, resolution.HAND_BACK_INTENT)]


async def test_a_delivery_retry_is_sent_once_with_two_workers(ctx, workers):
    ctx.senders = {"webchat": RecordingSender(fail_with="HTTP 503")}
    conversation_id = await handed_off(ctx, channel="webchat")
    message = await send(ctx, conversation_id, text="Já volto.", author_kind=AuthorKind.SYSTEM)
    async with ctx.db.session() as session:
        stored = await session.get_one(Message, message.id)
        stored.error = "webchat: HTTP 503"  # a retryable failure, a minute ago
        stored.delivery_status = DeliveryStatus.PENDING
        stored.created_at = utcnow() - timedelta(minutes=1)

    await both_run("delivery retries", workers)

    assert sent(workers).count("Já volto.") == 1
    async with ctx.db.session() as session:
        stored = await session.get_one(Message, message.id)
    assert (stored.delivery_status, stored.attempts) == (DeliveryStatus.SENT, 2)
