"""Two web replicas on one PostgreSQL database — each its own `Inbox` and its own `Database`
engines, sharing the assistant (its replicas share the tracker store) and the provider:
one turn in flight per patient across both, each patient's messages answered once and in the
order they were recorded, whichever replica recorded them, and nothing lost when a replica
dies mid-turn or the assistant cannot take a message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from itertools import count

import pytest
from sqlalchemy import select, text, update

from channels.base import Inbound
from core.context import Context
from core.settings import Settings
from handoff.transitions import listeners, talking
from messaging.assistant import PATIENT_TURN_LOCK
from messaging.inbound import Inbox
from models import Direction, Message, utcnow
from models.db import Database
from models.locks import lock_keys
from tests.fakes import FakeAssistant, RecordingBot, RecordingBus, RecordingSender

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

_ids = count()


@dataclass
class Replica:
    ctx: Context
    inbox: Inbox


@pytest.fixture
def assistant() -> FakeAssistant:
    return FakeAssistant()


@pytest.fixture
def whatsapp() -> RecordingSender:
    """The provider both replicas send to."""
    return RecordingSender()


@pytest.fixture
async def replicas(
    settings: Settings, assistant: FakeAssistant, whatsapp: RecordingSender
) -> AsyncIterator[tuple[Replica, Replica]]:
    started = []
    for _ in range(2):
        ctx = Context(
            settings=settings,
            db=Database(settings.database_url),
            bus=RecordingBus(),
            senders={"whatsapp": whatsapp},
            bot=RecordingBot(),
        )
        listeners.listen(ctx)
        inbox = Inbox(ctx, assistant, {}, talking.join_open_episode)  # type: ignore[arg-type]
        started.append(Replica(ctx, inbox))
    yield started[0], started[1]
    for replica in started:
        await replica.inbox.drain()
        await replica.ctx.db.dispose()


def from_patient(phone: str, words: str) -> Inbound:
    return Inbound(
        channel="whatsapp",
        external_user_id=phone,
        provider_message_id=f"wamid.replicas-{next(_ids)}",
        text=words,
        phone=f"+{phone}",
    )


async def patient_of(replica: Replica, phone: str, words: str) -> int:
    """The patient a message from `phone`, recorded (and routed) on `replica`, belongs to."""
    recorded = await replica.inbox.accept(from_patient(phone, words))
    assert recorded is not None
    return recorded.message.patient_id


def replies_to(whatsapp: RecordingSender, phone: str) -> list[str]:
    return [m.text for m, identity in whatsapp.delivered if identity.external_id == phone]


async def unrouted(replica: Replica) -> list[str]:
    async with replica.ctx.db.session() as session:
        query = select(Message.text).where(
            Message.direction == Direction.INBOUND, Message.processed_at.is_(None)
        )
        return list((await session.execute(query)).scalars())


async def until(condition: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def kill(replica: Replica, patient_id: int) -> None:
    """What SIGKILL does to a replica routing `patient_id`: its connection to PostgreSQL dies
    (taking the patient's lock with it) and its work stops where it was."""
    namespace, key = lock_keys(PATIENT_TURN_LOCK, patient_id)
    async with replica.ctx.db.session() as session:
        killed = await session.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = "
                "'advisory' AND granted AND classid = :classid AND objid = :objid"
            ),
            {"classid": namespace % 2**32, "objid": key},
        )
    for task in list(replica.inbox._tasks):
        task.cancel()
    await replica.inbox.drain()
    await replica.ctx.db.dispose()
    assert killed == 1, "the replica held no lock of the patient"


async def test_messages_arriving_alternately_on_two_replicas_are_answered_once_in_order_one_turn_at_a_time(  # noqa: E501
    replicas, assistant, whatsapp
):
    assistant.delay = 0.05  # slower than the patients write
    phones = [f"551198000{n:04d}" for n in range(6)]
    patients = {}
    for i in range(5):
        arriving = [
            patient_of(replicas[(i + n) % 2], phone, f"mensagem {i}")
            for n, phone in enumerate(phones)
        ]
        patients = dict(zip(phones, await asyncio.gather(*arriving), strict=True))

    for replica in replicas:
        await replica.inbox.drain()

    said = [f"mensagem {i}" for i in range(5)]
    for phone, patient in patients.items():
        assert assistant.most_in_flight[patient] == 1
        assert assistant.texts_of(patient) == said
        assert replies_to(whatsapp, phone) == [f"eco: {words}" for words in said]
    assert await unrouted(replicas[0]) == []


async def test_a_replica_killed_mid_turn_leaves_the_message_to_the_other_answered_once_before_the_newer_one(  # noqa: E501
    replicas, assistant, whatsapp
):
    killed, survivor = replicas
    assistant.stalls["primeira"] = asyncio.Event()  # never set: the replica dies first
    phone = "5511980001001"

    patient = await patient_of(killed, phone, "primeira")
    await until(lambda: assistant.in_flight[patient] == 1)
    await patient_of(survivor, phone, "segunda")
    await asyncio.sleep(0.3)
    assert assistant.texts_of(patient) == []  # the survivor waits for the patient's turn
    await kill(killed, patient)
    await survivor.inbox.drain()

    turns = [(t.text, t.replay) for t in assistant.received if t.sender_id == str(patient)]
    # The dead replica's turn may have reached the assistant: its tracker answers a replay.
    assert turns == [("primeira", True), ("segunda", False)]
    assert replies_to(whatsapp, phone) == ["eco: primeira", "eco: segunda"]
    assert await unrouted(survivor) == []


async def test_a_message_the_assistant_could_not_take_is_answered_before_the_patients_next_one(
    replicas, assistant, whatsapp
):
    first, second = replicas
    phone = "5511980001002"
    assistant.down = 1

    patient = await patient_of(first, phone, "primeira")
    await first.inbox.drain()
    assert await unrouted(first) == ["primeira"]  # waits, recorded, for the assistant
    await patient_of(second, phone, "segunda")
    await second.inbox.drain()

    assert assistant.texts_of(patient) == ["primeira", "segunda"]
    assert replies_to(whatsapp, phone) == ["eco: primeira", "eco: segunda"]


async def test_replicas_sweeping_at_once_answer_a_waiting_message_once(
    replicas, assistant, whatsapp
):
    phones = ["5511980001003", "5511980001004"]
    assistant.down = 2
    for phone in phones:
        await patient_of(replicas[0], phone, "oi")
    await replicas[0].inbox.drain()
    assert await unrouted(replicas[0]) == ["oi", "oi"]
    async with replicas[0].ctx.db.session() as session:
        aged = utcnow() - Inbox.replay_after - timedelta(seconds=1)
        await session.execute(update(Message).values(recorded_at=aged))
    assistant.delay = 0.1

    cutoff = utcnow() - Inbox.replay_after
    await asyncio.gather(
        *(replica.inbox.replay_unprocessed(cutoff) for replica in replicas for _ in range(2))
    )

    assert [replies_to(whatsapp, phone) for phone in phones] == [["eco: oi"], ["eco: oi"]]
    assert [turn.replay for turn in assistant.received] == [True, True]
    assert await unrouted(replicas[1]) == []
