"""Every message to a patient keeps its channel's send-rate cap across every process sharing
Redis, timed where it counts, at the provider; reminders leave room for live replies and, with
two dispatchers on one PostgreSQL database, go out once each."""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from channels.whatsapp import WhatsAppChannel
from core.context import Context
from core.ratelimit import RedisLimits
from core.settings import Settings, parse_send_rates
from messaging.outbound import send
from models import AuthorKind, Reminder, ReminderStatus
from models.db import Database
from scheduling import appointments
from scheduling.reminders import dispatch_due, plan_reminders
from tests import factories
from tests.channels.fake_provider import FakeProvider, ProviderRequest
from tests.channels.webhooks import SECRETS
from tests.databases import TEST_REDIS_URL, PostgresDatabases, require_postgres, require_redis
from tests.factories import clinic_rules
from tests.fakes import RecordingBot, RecordingBus
from tests.scheduling.conftest import Agenda, make_patient, sp
from tests.scheduling.conftest import agenda as agenda  # the demo clinic's agenda fixture

CAP = 5


@pytest.fixture
def database_url(postgres_databases: PostgresDatabases | None) -> Iterator[str]:
    """Several processes on one database: PostgreSQL (the embedded SQLite has one writer)."""
    require_postgres()
    require_redis()
    assert postgres_databases is not None
    url = postgres_databases.create()
    yield url
    postgres_databases.drop(url)


@pytest.fixture
def capped(settings: Settings, provider: FakeProvider) -> Settings:
    """WhatsApp on the fake Graph API at CAP messages per second, limits in Redis."""
    whatsapp = {k: v for k, v in SECRETS.items() if k.startswith("WHATSAPP_")}
    return dataclasses.replace(
        settings,
        redis_url=TEST_REDIS_URL,
        send_rates=parse_send_rates(f"whatsapp={CAP}"),
        channel_env={**whatsapp, "META_GRAPH_URL": f"{provider.url}/graph/v24.0"},
    )


@pytest.fixture
async def processes(capped: Settings) -> AsyncIterator[list[Context]]:
    """Two processes of the clinic: each its own connections, channel and Redis client."""
    started = []
    for _ in range(2):
        channel = WhatsAppChannel(WhatsAppChannel.load_config(capped))
        started.append(
            Context(
                settings=capped,
                db=Database(capped.database_url),
                bus=RecordingBus(),
                senders={"whatsapp": channel},
                bot=RecordingBot(),
                limits=RedisLimits(capped.redis_url),
            )
        )
    yield started
    for ctx in started:
        await ctx.senders["whatsapp"].close()  # type: ignore[attr-defined]
        await ctx.close()


def busiest_second(requests: list[ProviderRequest]) -> int:
    """The most requests that arrived within any one second."""
    times = sorted(r.at for r in requests)
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


async def _patients_writing(ctx: Context, count: int) -> list[tuple[str, int]]:
    """`count` WhatsApp patients who just wrote (inside the window): (phone, conversation)."""
    prefix = f"55{uuid.uuid4().int % 10**6:06d}"
    recorded = [
        await factories.patient_message(ctx.db, channel="whatsapp", user=f"{prefix}{n:04d}")
        for n in range(count)
    ]
    return [(r.identity.external_id, r.conversation.id) for r in recorded]


async def test_two_processes_together_never_send_more_than_the_cap_in_any_second(
    processes: list[Context], provider: FakeProvider
) -> None:
    patients = await _patients_writing(processes[0], 16)
    # Each process's first send opens its connection to the provider: not what is measured.
    for ctx, (_, conversation) in zip(processes, patients[:2], strict=True):
        await send(ctx, conversation, text="Olá!", author_kind=AuthorKind.ATTENDANT)
    patients = patients[2:]
    phones = {phone for phone, _ in patients}

    await asyncio.gather(
        *(
            send(processes[n % 2], conversation, text="Olá!", author_kind=AuthorKind.ATTENDANT)
            for n, (_, conversation) in enumerate(patients)
        )
    )

    arrived = provider.sent(lambda r: r.recipient in phones)
    assert len(arrived) == len(patients)
    assert busiest_second(arrived) <= CAP
    # Paced, not merely lucky: 14 sends at 5 per second take well over two seconds.
    assert max(r.at for r in arrived) - min(r.at for r in arrived) > 2.4


async def test_a_live_reply_does_not_wait_behind_a_burst_of_reminders(
    processes: list[Context], provider: FakeProvider, agenda: Agenda
) -> None:
    ctx = processes[0]
    await _book_due_reminders(ctx, agenda, 10)
    [(phone, conversation)] = await _patients_writing(ctx, 1)
    burst = asyncio.gather(
        *(dispatch_due(c, worker_id=f"w{n}", clock=lambda: DUE) for n, c in enumerate(processes))
    )
    await asyncio.sleep(0.5)  # the burst has claimed and queued all 10 reminders by now

    sent_at = asyncio.get_running_loop().time()
    await send(processes[1], conversation, text="Já te respondo", author_kind=AuthorKind.ATTENDANT)
    waited = asyncio.get_running_loop().time() - sent_at
    await burst

    # Behind the queued reminders it would wait about 1.5 s; it takes the lane's next slots.
    assert waited < 0.8
    assert len(provider.sent_to(phone)) == 1


async def test_two_dispatchers_on_one_database_send_each_reminder_once(
    processes: list[Context], provider: FakeProvider, agenda: Agenda
) -> None:
    ctx = processes[0]
    booked = await _book_due_reminders(ctx, agenda, 8)
    earlier = len(provider.sent())  # the fake provider serves the whole session

    await asyncio.gather(
        *(
            dispatch_due(c, worker_id=f"w{n}", clock=lambda: DUE, batch=3)
            for n, c in enumerate(processes)
        )
    )

    templates = [r for r in provider.sent()[earlier:] if r.json.get("type") == "template"]
    reminded = Counter(_appointment_of(r) for r in templates)
    assert {a: reminded[a] for a in booked} == dict.fromkeys(booked, 1)
    statuses = await _day_before_statuses(ctx, booked)
    assert statuses == [ReminderStatus.SENT] * len(booked)


# --- helpers -------------------------------------------------------------------------------

NOW = sp(2026, 3, 9, 10)  # Monday
DUE = sp(2026, 3, 11, 18)  # Wednesday 18h: the 24 h reminders of Thursday afternoon are due


async def _book_due_reminders(ctx: Context, agenda: Agenda, count: int) -> list[int]:
    """`count` (at most 10) WhatsApp patients outside the window, booked with Dr. Paulo on
    Thursday from 13h: their 24 h reminders are all due at DUE."""
    booked = []
    for n in range(count):
        patient = await make_patient(ctx.db, f"Paciente {n}")
        appointment = await appointments.book(
            ctx.db,
            clinic_rules(),
            patient_id=patient.id,
            doctor_id=agenda.doctor("Paulo").id,
            starts_at=sp(2026, 3, 12, 13) + timedelta(minutes=30 * n),
            channel="whatsapp",
            self_service=False,
            now=NOW,
        )
        booked.append(appointment.id)
    await plan_reminders(ctx, clock=lambda: NOW)
    return booked


def _appointment_of(request: ProviderRequest) -> int:
    button = next(c for c in request.json["template"]["components"] if c["type"] == "button")
    payload = button["parameters"][0]["payload"]
    return int(json.loads(payload[payload.index("{") :])["appointment_id"])


async def _day_before_statuses(ctx: Context, appointment_ids: list[int]) -> list[ReminderStatus]:
    async with ctx.db.session() as session:
        query = select(Reminder.status).where(
            Reminder.appointment_id.in_(appointment_ids), Reminder.offset_minutes == 24 * 60
        )
        return list((await session.execute(query)).scalars())
