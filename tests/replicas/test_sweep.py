"""The inbound sweep on PostgreSQL (messaging/inbound.py): what a killed web replica left is
replayed by the survivor's next sweep even while the survivor's live turns take every one of
its lock connections, and never while a live turn of the same patient is in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from itertools import count

import pytest
from sqlalchemy import select, update

from channels.base import Inbound
from core.context import Context
from core.settings import Settings
from handoff.transitions import listeners, talking
from messaging.history import record_inbound
from messaging.inbound import Inbox
from models import Direction, Message, utcnow
from models.db import Database
from tests.fakes import FakeAssistant, RecordingBot, RecordingBus, RecordingSender

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

# The survivor's live turns may hold this many patient locks at once.
LOCK_CONNECTIONS = 2

_ids = count()


@pytest.fixture
def assistant() -> FakeAssistant:
    return FakeAssistant()


@pytest.fixture
def whatsapp() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def stuck() -> list[asyncio.Event]:
    """What keeps the live turns stuck in the assistant until the test lets them go."""
    return []


def replica(
    settings: Settings,
    assistant: FakeAssistant,
    whatsapp: RecordingSender,
    lock_connections: int = LOCK_CONNECTIONS,
) -> Inbox:
    """A web replica's inbox on the test database, answering through the shared fakes."""
    ctx = Context(
        settings=settings,
        db=Database(settings.database_url, lock_connections=lock_connections),
        bus=RecordingBus(),
        senders={"whatsapp": whatsapp},
        bot=RecordingBot(),
    )
    listeners.listen(ctx)
    return Inbox(ctx, assistant, {}, talking.join_open_episode)  # type: ignore[arg-type]


@pytest.fixture
async def survivor(
    settings: Settings,
    assistant: FakeAssistant,
    whatsapp: RecordingSender,
    stuck: list[asyncio.Event],
) -> AsyncIterator[Inbox]:
    inbox = replica(settings, assistant, whatsapp)
    yield inbox
    for stall in stuck:
        stall.set()
    await inbox.drain()
    await inbox.ctx.db.dispose()


def from_patient(phone: str, words: str) -> Inbound:
    return Inbound(
        channel="whatsapp",
        external_user_id=phone,
        provider_message_id=f"wamid.sweep-{next(_ids)}",
        text=words,
        phone=f"+{phone}",
    )


async def left_by_a_dead_replica(inbox: Inbox, phone: str, words: str) -> int:
    """Record a message as a replica killed before routing it would: recorded long enough
    ago for the sweep, never routed. Returns its patient."""
    async with inbox.ctx.db.session() as session:
        recorded = await record_inbound(session, from_patient(phone, words))
        aged = utcnow() - Inbox.replay_after - timedelta(seconds=1)
        await session.execute(
            update(Message).where(Message.id == recorded.message.id).values(recorded_at=aged)
        )
    return recorded.message.patient_id


async def live_turn(
    inbox: Inbox, assistant: FakeAssistant, stuck: list[asyncio.Event], phone: str, words: str
) -> int:
    """A message routed now, its turn (or the older one it routes first) stuck in the
    assistant until `stuck` is set, holding the patient's lock."""
    stuck.append(assistant.stalls.setdefault(words, asyncio.Event()))
    recorded = await inbox.accept(from_patient(phone, words))
    assert recorded is not None
    patient = recorded.message.patient_id
    await until(lambda: assistant.in_flight[patient] == 1)
    return patient


async def until(condition: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def replies_to(whatsapp: RecordingSender, phone: str) -> list[str]:
    return [m.text for m, identity in whatsapp.delivered if identity.external_id == phone]


async def unrouted(inbox: Inbox) -> list[str]:
    async with inbox.ctx.db.session() as session:
        query = select(Message.text).where(
            Message.direction == Direction.INBOUND, Message.processed_at.is_(None)
        )
        return sorted((await session.execute(query)).scalars())


async def test_the_sweep_replays_a_dead_replicas_message_while_live_turns_hold_every_lock_connection(  # noqa: E501
    survivor, assistant, whatsapp, stuck
):
    await left_by_a_dead_replica(survivor, "5511980002000", "ficou para trás")
    for n in range(LOCK_CONNECTIONS):
        await live_turn(survivor, assistant, stuck, f"551198000210{n}", f"ao vivo {n}")

    async with asyncio.timeout(5):  # it used to wait for a live turn to end
        replayed = await survivor.replay_unprocessed(utcnow() - Inbox.replay_after)

    assert replayed == 1
    assert replies_to(whatsapp, "5511980002000") == ["eco: ficou para trás"]
    assert [(turn.text, turn.replay) for turn in assistant.received] == [("ficou para trás", True)]


async def test_the_sweep_leaves_a_patient_whose_live_turn_is_in_flight_to_that_turn(
    survivor, assistant, whatsapp, stuck
):
    phone = "5511980002200"
    await left_by_a_dead_replica(survivor, phone, "antes")
    # The patient's next message routes the older one first, and is stuck on it.
    stuck.append(assistant.stalls.setdefault("antes", asyncio.Event()))
    patient = await live_turn(survivor, assistant, stuck, phone, "depois")

    async with asyncio.timeout(5):
        assert await survivor.replay_unprocessed(utcnow() - Inbox.replay_after) == 0
    assert await unrouted(survivor) == ["antes", "depois"]

    for stall in stuck:
        stall.set()
    await survivor.drain()
    assert assistant.most_in_flight[patient] == 1
    assert replies_to(whatsapp, phone) == ["eco: antes", "eco: depois"]
    assert await unrouted(survivor) == []


async def test_a_replay_stuck_in_the_assistant_does_not_hold_up_the_other_patients_replays(
    survivor, assistant, whatsapp, stuck
):
    await left_by_a_dead_replica(survivor, "5511980002300", "demorada")
    await left_by_a_dead_replica(survivor, "5511980002301", "rápida")
    stuck.append(assistant.stalls.setdefault("demorada", asyncio.Event()))

    sweep = asyncio.create_task(survivor.replay_unprocessed(utcnow() - Inbox.replay_after))
    await until(lambda: replies_to(whatsapp, "5511980002301") == ["eco: rápida"])
    assert not sweep.done()
    stuck[-1].set()

    assert await sweep == 2
    assert replies_to(whatsapp, "5511980002300") == ["eco: demorada"]


async def test_a_message_another_replica_answered_while_its_turn_waited_for_a_lock_connection_reaches_the_assistant_once(  # noqa: E501
    survivor, assistant, whatsapp, stuck, settings
):
    phone = "5511980002410"
    assert await survivor.accept(from_patient(phone, "oi")) is not None
    await until(lambda: replies_to(whatsapp, phone) == ["eco: oi"])
    for n in range(LOCK_CONNECTIONS):
        await live_turn(survivor, assistant, stuck, f"551198000240{n}", f"ao vivo {n}")
    # Recorded here with nothing older unrouted; its routing waits for one of the lock
    # connections the live turns hold, while another replica's sweep answers it.
    assert await survivor.accept(from_patient(phone, "agora")) is not None

    other = replica(settings, assistant, whatsapp, lock_connections=10)
    try:
        assert await other.replay_unprocessed(utcnow()) == 1
        await other.drain()
    finally:
        await other.ctx.db.dispose()
    for stall in stuck:
        stall.set()
    await survivor.drain()

    assert [turn.text for turn in assistant.received].count("agora") == 1
    assert replies_to(whatsapp, phone) == ["eco: oi", "eco: agora"]
