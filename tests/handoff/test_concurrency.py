"""Many patients handed off and many attendants changing state at once, from several
"processes" (separate engines and connection pools on one database): every conversation is
assigned once at a time and no attendant ever holds more patients than their capacity."""

import asyncio
import random
from collections import Counter, defaultdict

from sqlalchemy import select

from core.context import Context
from handoff import presence
from handoff.transitions import common, listeners, moves, queueing, resolution, talking
from models import Conversation, HandoffEvent, HandoffKind, Owner, Presence, Role
from models.db import Database
from tests.factories import patient_message, staff
from tests.fakes import RecordingBot, RecordingBus, RecordingSender

PROCESSES = 4
PATIENTS = 40
CAPACITIES = [2, 3, 1, 4, 2, 3]


def _process(settings, url):
    ctx = Context(
        settings=settings,
        db=Database(url, pool_size=3),
        bus=RecordingBus(),
        senders={"webchat": RecordingSender(), "whatsapp": RecordingSender()},
        bot=RecordingBot(),
    )
    listeners.listen(ctx)
    return ctx


HOLDING = (
    HandoffKind.ASSIGNED,
    HandoffKind.TAKEN,
    HandoffKind.TRANSFERRED,
    HandoffKind.REASSIGNED,
    HandoffKind.TAKEN_OVER,
    HandoffKind.LINKED,
)
RELEASING = (HandoffKind.REQUEUED, HandoffKind.RESOLVED)


def _replay(events, capacities):
    """Walk the transition log in commit order, checking the invariants at every step
    (capacities are the attendants'; managers who take over have none)."""
    holder = {}
    held = defaultdict(Counter)  # attendant -> patients held (count of their conversations)
    for event in events:
        if event.kind not in HOLDING + RELEASING:
            continue
        previous = holder.pop(event.conversation_id, None)
        if event.kind in (HandoffKind.ASSIGNED, HandoffKind.TAKEN):
            assert previous is None, f"conversation {event.conversation_id} assigned twice"
        if previous is not None:
            held[previous][event.patient_id] -= 1
            held[previous] += Counter()  # drop zero counts
        if event.kind in HOLDING and event.to_attendant_id is not None:
            holder[event.conversation_id] = event.to_attendant_id
            held[event.to_attendant_id][event.patient_id] += 1
            if event.to_attendant_id in capacities:
                assert len(held[event.to_attendant_id]) <= capacities[event.to_attendant_id]
    return holder


def _phone(n):
    return f"+55119700{n:05d}"


async def test_simultaneous_handoffs_and_attendants_never_double_assign(settings, db):
    url = settings.database_url
    processes = [_process(settings, url) for _ in range(PROCESSES)]
    try:
        team = [
            await staff(db, presence=Presence.OFFLINE, capacity=capacity) for capacity in CAPACITIES
        ]
        marta = await staff(db, Role.MANAGER)
        capacities = {member.id: member.attendant_profile.capacity for member in team}
        conversations = [
            (await patient_message(db, phone=_phone(n))).conversation.id for n in range(PATIENTS)
        ]
        rng = random.Random(5)

        def anywhere():
            return rng.choice(processes)

        # Phase 1: everyone hands off while the whole team comes online.
        await asyncio.gather(
            *(
                queueing.request_handoff(anywhere(), c, reason="pedido_do_paciente")
                for c in conversations
            ),
            *(presence.set_presence(anywhere(), member, Presence.ONLINE) for member in team),
            *(queueing.distribute(anywhere()) for _ in range(PROCESSES)),
        )
        async with db.session() as session:
            rows = (await session.execute(select(Conversation))).scalars().all()
        assigned = [c for c in rows if c.owner == Owner.ATTENDANT]
        assert len(assigned) == sum(CAPACITIES)
        assert Counter(c.assigned_attendant_id for c in assigned) == Counter(capacities)

        # Phase 2: some patients being served write on WhatsApp too while their attendants
        # resolve, transfer or are taken over by a manager, attendants take from the queue
        # by hand, and each process keeps distributing.
        by_id = {member.id: member for member in team}
        rng.shuffle(assigned)
        second_channel = []
        for c in assigned[:5]:
            n = conversations.index(c.id)
            second_channel.append(
                (
                    await patient_message(
                        db, "oi", channel="whatsapp", user=_phone(n)[1:], phone=_phone(n)
                    )
                ).conversation.id
            )
        queued = [c.id for c in rows if c.owner == Owner.QUEUED]

        def transfer(c):
            others = [m.id for m in team if m.id != c.assigned_attendant_id]
            return moves.transfer(
                anywhere(), c.id, by_id[c.assigned_attendant_id], rng.choice(others)
            )

        outcomes = await asyncio.gather(
            *(talking.join_open_episode(anywhere(), c) for c in second_channel),
            *(
                resolution.resolve(anywhere(), c.id, by_id[c.assigned_attendant_id])
                for c in assigned[::3]
            ),
            *(transfer(c) for c in assigned[1::3]),
            *(moves.take_over(anywhere(), c.id, marta) for c in assigned[2::6]),
            *(moves.take(anywhere(), rng.choice(queued), member) for member in team),
            *(queueing.distribute(anywhere()) for _ in range(PROCESSES * 2)),
            return_exceptions=True,
        )
        # Refusals (a full receiver, a conversation someone else moved first) are expected;
        # nothing else is.
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, common.TransitionError), repr(outcome)
        await queueing.distribute(anywhere())

        async with db.session() as session:
            rows = (await session.execute(select(Conversation))).scalars().all()
            events = (
                (await session.execute(select(HandoffEvent).order_by(HandoffEvent.id)))
                .scalars()
                .all()
            )
        open_assigned = [c for c in rows if c.owner == Owner.ATTENDANT]
        holder = _replay(events, capacities)
        assert holder == {c.id: c.assigned_attendant_id for c in open_assigned}
        load = defaultdict(set)
        for c in open_assigned:
            load[c.assigned_attendant_id].add(c.patient_id)
        # Whoever was freed got the next in the queue: every attendant is full again.
        assert {a: len(p) for a, p in load.items() if a in capacities} == capacities
        # A patient's channels are never split between owners.
        owners = defaultdict(set)
        for c in rows:
            if c.status == "open" and c.owner != Owner.BOT:
                owners[c.patient_id].add((c.owner, c.assigned_attendant_id))
        assert all(len(held) == 1 for held in owners.values())
        # Each patient was told once that a person joined, by whichever process assigned them.
        told = Counter(
            message.conversation_id
            for process in processes
            for message, _ in process.senders["webchat"].delivered
            if message.author_kind == "system" and "entrou na conversa" in message.text
        )
        assert set(told.values()) == {1}
    finally:
        for process in processes:
            await process.db.dispose()
