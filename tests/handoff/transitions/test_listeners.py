"""What the handoff does when the event bus tells it (handoff.transitions.listeners)."""

from core.events import BOT_HANDOFF
from models import Owner, Presence, Priority
from tests.factories import patient_message, staff
from tests.handoff.steps import read_conversation


async def test_the_bots_request_for_a_person_queues_the_conversation_with_its_priority(ctx):
    await staff(ctx.db, presence=Presence.OFFLINE)
    recorded = await patient_message(ctx.db, "estou com dor no peito")

    await ctx.bus.publish(
        {
            "type": BOT_HANDOFF,
            "conversation_id": recorded.conversation.id,
            "reason": "emergencia",
            "priority": "critical",
        }
    )

    conversation = await read_conversation(ctx.db, recorded.conversation.id)
    assert (conversation.owner, conversation.handoff_reason) == (Owner.QUEUED, "emergencia")
    assert conversation.priority == Priority.CRITICAL
