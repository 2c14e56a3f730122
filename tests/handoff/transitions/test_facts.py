"""The handoff facts the analytics console reads (handoff.facts): kept by the transitions and
replies as they happen, the same as a rebuild from the whole trail and messages gives."""

from sqlalchemy import select

from handoff import facts
from handoff.transitions import resolution, talking
from handoff.transitions.moves import transfer
from models import HandoffEvent, HandoffFacts, HandoffKind
from tests.factories import patient_message, staff
from tests.handoff.steps import handed_off


async def kept(db):
    async with db.session() as session:
        rows = (await session.execute(select(HandoffFacts.__table__))).all()
    return sorted(tuple(row) for row in rows)


async def rebuilt(db):
    async with db.session() as session:
        for statement in facts.rebuild():
            await session.execute(statement)
    return await kept(db)


async def test_a_handoff_keeps_its_first_assignment_first_reply_and_resolver(ctx):
    ana = await staff(ctx.db)
    conversation_id = await handed_off(ctx)
    await talking.add_note(ctx, conversation_id, ana, "Vou passar para o Bruno.")
    bruno = await staff(ctx.db)
    await transfer(ctx, conversation_id, ana, bruno.id)
    first = await talking.reply(ctx, conversation_id, bruno, "Oi, sou o Bruno.")
    await talking.reply(ctx, conversation_id, bruno, "Já resolvo.")
    await resolution.resolve(ctx, conversation_id, bruno)

    async with ctx.db.session() as session:
        row = await session.get_one(HandoffFacts, conversation_id)
        assigned = (
            await session.execute(
                select(HandoffEvent.created_at).where(
                    HandoffEvent.conversation_id == conversation_id,
                    HandoffEvent.kind == HandoffKind.ASSIGNED,
                )
            )
        ).scalar_one()
    # Ana got it first and only wrote a note: the first reply and the resolution are Bruno's.
    assert row.handed
    assert row.first_assigned_at == assigned
    assert (row.first_reply_id, row.replier_id) == (first.id, bruno.id)
    assert row.resolver_id == bruno.id
    assert await kept(ctx.db) == await rebuilt(ctx.db)


async def test_a_conversation_that_joins_an_episode_is_not_a_handoff_of_its_own(ctx):
    ana = await staff(ctx.db, capacity=1)
    phone = "+5511912345678"
    whatsapp = await patient_message(
        ctx.db, "oi", channel="whatsapp", user="5511912345678", phone=phone
    )
    conversation_id = await handed_off(ctx, channel="webchat", phone=phone)

    message = await talking.reply(
        ctx, conversation_id, ana, "Te escrevi no WhatsApp.", channel="whatsapp"
    )

    async with ctx.db.session() as session:
        linked = await session.get_one(HandoffFacts, whatsapp.conversation.id)
        handed = await session.get_one(HandoffFacts, conversation_id)
    assert not linked.handed
    assert (linked.first_reply_id, linked.replier_id) == (message.id, ana.id)
    assert handed.handed and handed.first_reply_id is None
    assert await kept(ctx.db) == await rebuilt(ctx.db)
