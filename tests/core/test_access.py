"""Who may read or act on what (core.access): the rules the handoff and the web both ask."""

import pytest
from sqlalchemy import select, update

from core import access
from handoff.transitions import queueing
from models import Conversation, ConversationStatus, Owner, Presence, Role, User, utcnow
from tests.factories import patient_message, staff

ANA, BRUNO = 1, 2


def _user(user_id, role, *, is_active=True):
    return User(id=user_id, role=role, is_active=is_active)


def _conversation(owner, *, assigned_to=None, status=ConversationStatus.OPEN):
    return Conversation(
        id=10, patient_id=99, owner=owner, assigned_attendant_id=assigned_to, status=status
    )


ana = _user(ANA, Role.ATTENDANT)
marta = _user(3, Role.MANAGER)
admin = _user(4, Role.ADMIN)
patient = _user(99, Role.PATIENT)

WITH_ANA = _conversation(Owner.ATTENDANT, assigned_to=ANA)
WITH_BRUNO = _conversation(Owner.ATTENDANT, assigned_to=BRUNO)
QUEUED = _conversation(Owner.QUEUED)
WITH_THE_BOT = _conversation(Owner.BOT)
RESOLVED_BY_ANA = _conversation(Owner.BOT, assigned_to=ANA, status=ConversationStatus.CLOSED)


def test_managers_and_admins_supervise_attendants_and_patients_do_not():
    assert access.is_manager(marta) and access.is_manager(admin)
    assert not access.is_manager(ana) and not access.is_manager(patient)
    assert access.is_admin(admin) and not access.is_admin(marta)


def test_an_attendant_reads_the_queue_and_what_is_with_them_and_nothing_else():
    assert access.may_read_conversation(ana, WITH_ANA)
    assert access.may_read_conversation(ana, QUEUED)
    assert not access.may_read_conversation(ana, WITH_BRUNO)
    assert not access.may_read_conversation(ana, WITH_THE_BOT)
    assert not access.may_read_conversation(ana, RESOLVED_BY_ANA)


def test_managers_read_every_conversation_and_patients_none_through_the_staff_rules():
    for conversation in (WITH_ANA, WITH_BRUNO, QUEUED, WITH_THE_BOT, RESOLVED_BY_ANA):
        assert access.may_read_conversation(marta, conversation)
        assert access.may_read_conversation(admin, conversation)
        assert not access.may_read_conversation(patient, conversation)


def test_an_attendant_acts_only_in_an_open_conversation_assigned_to_them():
    assert access.may_act_in_conversation(ana, WITH_ANA)
    for conversation in (QUEUED, WITH_BRUNO, WITH_THE_BOT, RESOLVED_BY_ANA):
        assert not access.may_act_in_conversation(ana, conversation)


def test_managers_act_in_any_open_conversation_and_in_no_closed_one():
    for conversation in (WITH_ANA, WITH_BRUNO, QUEUED, WITH_THE_BOT):
        assert access.may_act_in_conversation(marta, conversation)
    assert not access.may_act_in_conversation(marta, RESOLVED_BY_ANA)
    assert not access.may_act_in_conversation(patient, WITH_THE_BOT)


def test_an_attendant_takes_from_the_queue_only_what_is_not_set_aside_for_a_colleague():
    assert access.may_take_from_queue(ana, QUEUED)
    assert access.may_take_from_queue(ana, _conversation(Owner.QUEUED, assigned_to=ANA))
    assert not access.may_take_from_queue(ana, _conversation(Owner.QUEUED, assigned_to=BRUNO))
    assert access.may_take_from_queue(marta, _conversation(Owner.QUEUED, assigned_to=BRUNO))
    assert not access.may_take_from_queue(patient, QUEUED)


def test_only_active_serving_staff_receive_conversations():
    assert access.may_receive_conversations(ana)
    assert access.may_receive_conversations(marta)
    assert not access.may_receive_conversations(_user(5, Role.ATTENDANT, is_active=False))
    assert not access.may_receive_conversations(patient)


@pytest.fixture
async def served(ctx):
    """An attendant serves one patient; another patient talks to the bot."""
    attendant = await staff(ctx.db)
    recorded = await patient_message(ctx.db, "quero falar com alguém")
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    other = await patient_message(ctx.db, "oi")
    return attendant, recorded.conversation.patient_id, other.conversation.patient_id


async def test_an_attendant_acts_on_the_appointments_of_the_patients_they_serve_only(ctx, served):
    attendant, theirs, someone_else = served
    colleague = await staff(ctx.db, presence=Presence.OFFLINE)

    async with ctx.db.session() as session:
        assert await access.serves_patient(session, attendant.id, theirs)
        assert await access.may_act_on_appointments_of(session, attendant, theirs)
        assert not await access.may_act_on_appointments_of(session, attendant, someone_else)
        assert not await access.may_act_on_appointments_of(session, colleague, theirs)


async def test_managers_act_on_every_patients_appointments_and_a_patient_on_their_own(ctx, served):
    _, theirs, someone_else = served
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    async with ctx.db.session() as session:
        patient = await session.get(User, theirs)

        assert await access.may_act_on_appointments_of(session, marta, someone_else)
        assert await access.may_act_on_appointments_of(session, patient, theirs)
        assert not await access.may_act_on_appointments_of(session, patient, someone_else)


async def test_lists_of_conversations_show_exactly_what_each_person_may_read(ctx, served):
    attendant, theirs, _ = served  # one conversation with the attendant, one with the bot
    colleague = await staff(ctx.db, capacity=1)
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    with_colleague = await patient_message(ctx.db, "preciso de ajuda")
    await queueing.request_handoff(ctx, with_colleague.conversation.id, reason="pedido_do_paciente")
    waiting = (await patient_message(ctx.db, "alguém?")).conversation.id
    closed = (await patient_message(ctx.db, "obrigado")).conversation.id
    async with ctx.db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == waiting)
            .values(owner=Owner.QUEUED, queued_at=utcnow())
        )
        await session.execute(
            update(Conversation)
            .where(Conversation.id == closed)
            .values(status=ConversationStatus.CLOSED, assigned_attendant_id=attendant.id)
        )

    async with ctx.db.session() as session:
        patient = await session.get_one(User, theirs)
        everything = (await session.execute(select(Conversation))).scalars().all()
        for user in (attendant, colleague, marta, patient):
            listed = await session.execute(
                select(Conversation.id).where(access.readable_conversations(user))
            )
            readable = {c.id for c in everything if access.may_read_conversation(user, c)}
            assert set(listed.scalars()) == readable, user.role
        assert len({c.id for c in everything if access.may_read_conversation(attendant, c)}) == 2
