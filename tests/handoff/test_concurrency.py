"""Many patients handed off and many attendants changing state at once, from several
"processes" (separate engines and connection pools on one database): every conversation is
assigned once at a time and no attendant ever holds more patients than their capacity."""

import asyncio
import random
from collections import Counter, defaultdict

from sqlalchemy import select

from handoff import actions
from handoff.context import Context
from models import Conversation, HandoffEvent, HandoffKind, Owner, Presence
from models.db import Database
from tests.factories import patient_message, staff
from tests.fakes import RecordingBotApi, RecordingBus, RecordingSender

PROCESSES = 4
PATIENTS = 40
CAPACITIES = [2, 3, 1, 4, 2, 3]


def _process(settings, url):
    return Context(
        settings=settings,
        db=Database(url, pool_size=3),
        bus=RecordingBus(),
        senders={"webchat": RecordingSender()},
        bot=RecordingBotApi(),
    )


def _replay(events, capacities):
    """Walk the transition log in commit order, checking the invariants at every step."""
    holder = {}
    held = defaultdict(Counter)  # attendant -> patients held (count of their conversations)
    for event in events:
        previous = holder.pop(event.conversation_id, None)
        if event.kind == HandoffKind.ASSIGNED:
            assert previous is None, f"conversation {event.conversation_id} assigned twice"
        if previous is not None:
            held[previous][event.patient_id] -= 1
            held[previous] += Counter()  # drop zero counts
        if event.kind in (HandoffKind.ASSIGNED, HandoffKind.TAKEN, HandoffKind.TRANSFERRED):
            holder[event.conversation_id] = event.to_attendant_id
            held[event.to_attendant_id][event.patient_id] += 1
            assert len(held[event.to_attendant_id]) <= capacities[event.to_attendant_id]
    return holder


async def test_simultaneous_handoffs_and_attendants_never_double_assign(settings, db):
    url = settings.database_url
    processes = [_process(settings, url) for _ in range(PROCESSES)]
    try:
        team = [
            await staff(db, presence=Presence.OFFLINE, capacity=capacity) for capacity in CAPACITIES
        ]
        capacities = {member.id: member.attendant_profile.capacity for member in team}
        conversations = [(await patient_message(db)).conversation.id for _ in range(PATIENTS)]
        rng = random.Random(5)

        def anywhere():
            return rng.choice(processes)

        # Phase 1: everyone hands off while the whole team comes online.
        await asyncio.gather(
            *(
                actions.request_handoff(anywhere(), c, reason="pedido_do_paciente")
                for c in conversations
            ),
            *(actions.set_presence(anywhere(), member, Presence.ONLINE) for member in team),
            *(actions.distribute(anywhere()) for _ in range(PROCESSES)),
        )
        async with db.session() as session:
            rows = (await session.execute(select(Conversation))).scalars().all()
        assigned = [c for c in rows if c.owner == Owner.ATTENDANT]
        assert len(assigned) == sum(CAPACITIES)
        assert Counter(c.assigned_attendant_id for c in assigned) == Counter(capacities)

        # Phase 2: every attendant resolves at once, some transfer, some manually take,
        # while each process keeps distributing.
        by_id = {member.id: member for member in team}
        resolving = [
            actions.resolve(anywhere(), c.id, by_id[c.assigned_attendant_id]) for c in assigned
        ]
        await asyncio.gather(
            *resolving,
            *(actions.distribute(anywhere()) for _ in range(PROCESSES * 2)),
            return_exceptions=False,
        )
        async with db.session() as session:
            rows = (await session.execute(select(Conversation))).scalars().all()
            events = (
                (await session.execute(select(HandoffEvent).order_by(HandoffEvent.id)))
                .scalars()
                .all()
            )
        open_assigned = [c for c in rows if c.owner == Owner.ATTENDANT]
        assert len(open_assigned) == sum(CAPACITIES)
        assert Counter(c.assigned_attendant_id for c in open_assigned) == Counter(capacities)
        assert len([c for c in rows if c.owner == Owner.QUEUED]) == PATIENTS - 2 * sum(CAPACITIES)
        holder = _replay(events, capacities)
        assert holder == {c.id: c.assigned_attendant_id for c in open_assigned}
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
