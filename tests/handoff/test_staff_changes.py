"""What the admin changes in a staff account moves conversations at once."""

from sqlalchemy import select, update

from accounts import admin
from handoff import presence
from handoff.transitions import queueing
from models import AttendantProfile, Conversation, HandoffEvent, Owner, Presence, Role, User
from tests.factories import patient_message, staff


async def _handed_off(ctx):
    recorded = await patient_message(ctx.db, "quero falar com alguém")
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    return recorded.conversation.id


async def _holder(db, conversation_id):
    async with db.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        return conversation.owner, conversation.assigned_attendant_id


async def test_deactivating_an_attendant_returns_their_patients_ahead_of_newer_ones(ctx):
    boss = await staff(ctx.db, Role.ADMIN)
    ana = await staff(ctx.db, capacity=1)
    older = await _handed_off(ctx)
    newer = await _handed_off(ctx)

    await admin.update_staff(ctx, boss, ana.id, admin.StaffChanges(is_active=False))

    assert await _holder(ctx.db, older) == (Owner.QUEUED, None)
    async with ctx.db.session() as session:
        profile = await session.get(AttendantProfile, ana.id)
        reasons = (
            await session.execute(
                select(HandoffEvent.details).where(HandoffEvent.conversation_id == older)
            )
        ).scalars()
        assert profile.presence == Presence.OFFLINE
        assert {"reason": "deactivated"} in list(reasons)
    bruno = await staff(ctx.db, presence=Presence.OFFLINE, capacity=1)
    await presence.set_presence(ctx, bruno, Presence.ONLINE)
    assert await _holder(ctx.db, older) == (Owner.ATTENDANT, bruno.id)
    assert await _holder(ctx.db, newer) == (Owner.QUEUED, None)


async def test_raising_capacity_fills_the_new_room_from_the_queue(ctx):
    boss = await staff(ctx.db, Role.ADMIN)
    ana = await staff(ctx.db, capacity=1)
    await _handed_off(ctx)
    waiting = await _handed_off(ctx)
    assert await _holder(ctx.db, waiting) == (Owner.QUEUED, None)

    await admin.update_staff(ctx, boss, ana.id, admin.StaffChanges(capacity=2))

    assert await _holder(ctx.db, waiting) == (Owner.ATTENDANT, ana.id)


async def test_reactivating_an_attendant_still_online_gives_them_the_queue(ctx):
    boss = await staff(ctx.db, Role.ADMIN)
    ana = await staff(ctx.db)
    async with ctx.db.session() as session:
        await session.execute(update(User).where(User.id == ana.id).values(is_active=False))
    waiting = await _handed_off(ctx)
    assert await _holder(ctx.db, waiting) == (Owner.QUEUED, None)

    await admin.update_staff(ctx, boss, ana.id, admin.StaffChanges(is_active=True))

    assert await _holder(ctx.db, waiting) == (Owner.ATTENDANT, ana.id)
