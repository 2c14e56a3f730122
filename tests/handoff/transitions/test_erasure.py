"""An erased patient's open conversations close: none stays in the queue or with an
attendant, empty (handoff.transitions.resolution.close_for_erasure, from accounts.erasure)."""

from sqlalchemy import select

from accounts.erasure import erase_patient
from models import Conversation, ConversationStatus, HandoffEvent, Owner
from tests.factories import staff
from tests.handoff.steps import handed_off, read_conversation


async def test_erasing_a_patient_takes_their_conversations_out_of_the_queue_and_off_staff(ctx):
    ana = await staff(ctx.db, capacity=1)
    served = await handed_off(ctx)  # assigned to Ana, her only slot
    waiting = await handed_off(ctx)  # another patient, waiting in the queue
    erased = await handed_off(ctx)  # the patient to erase, queued behind
    events: list[dict] = []

    async def screens(event: dict) -> None:
        events.append(event)

    ctx.bus.listen(screens, frozenset({"conversation"}))
    patient_id = (await read_conversation(ctx.db, erased)).patient_id
    served_patient = (await read_conversation(ctx.db, served)).patient_id

    await erase_patient(ctx, patient_id, actor=None, channel="retencao")
    await erase_patient(ctx, served_patient, actor=None, channel="retencao")

    for conversation_id in (erased, served):
        closed = await read_conversation(ctx.db, conversation_id)
        assert closed.status == ConversationStatus.CLOSED
        assert (closed.owner, closed.assigned_attendant_id) == (Owner.BOT, None)
    async with ctx.db.session() as session:
        in_queue = select(Conversation.id).where(
            Conversation.owner == Owner.QUEUED, Conversation.status == ConversationStatus.OPEN
        )
        queued = list((await session.execute(in_queue)).scalars())
        kinds = (
            await session.execute(
                select(HandoffEvent.kind).where(HandoffEvent.conversation_id == erased)
            )
        ).scalars()
        assert "closed_for_erasure" in list(kinds)
    assert erased not in queued
    # Ana's slot, freed, went to the patient who was waiting.
    assert (await read_conversation(ctx.db, waiting)).assigned_attendant_id == ana.id
    closing = [e for e in events if e.get("change", {}).get("kind") == "closed_for_erasure"]
    assert {e["conversation"]["id"] for e in closing} == {erased, served}
    assert all(e["conversation"]["status"] == "closed" for e in closing)
