import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from channels.base import Inbound
from messaging.history import record_inbound
from models import Conversation, ConversationStatus, Message, Owner, User
from tests.factories import patient_message


async def test_first_message_opens_a_bot_conversation_for_a_new_patient(db):
    recorded = await patient_message(db, "oi, bom dia")

    assert recorded.conversation.owner == Owner.BOT
    assert recorded.message.text == "oi, bom dia"
    assert recorded.message.patient_id == recorded.conversation.patient_id
    async with db.session() as session:
        assert (await session.execute(select(func.count(User.id)))).scalar_one() == 1


async def test_redelivered_message_is_recorded_once_and_leaves_nothing_behind(db):
    first = await patient_message(db, "oi", user="v1", provider_message_id="same-id")
    async with db.session() as session:
        conversation = await session.get_one(Conversation, first.conversation.id)
        conversation.status = ConversationStatus.CLOSED

    with pytest.raises(IntegrityError):  # what the inbox takes for a redelivery
        await patient_message(db, "oi", user="v1", provider_message_id="same-id")

    async with db.session() as session:
        # Not even the conversation the redelivery would have opened.
        assert (await session.execute(select(func.count(Conversation.id)))).scalar_one() == 1
        assert (await session.execute(select(func.count(Message.id)))).scalar_one() == 1


async def test_same_provider_id_on_another_channel_is_a_different_message(db):
    await patient_message(db, channel="webchat", provider_message_id="42")
    other = await patient_message(
        db, channel="whatsapp", provider_message_id="42", phone="+5511987654321"
    )

    assert other is not None


async def test_messages_of_one_visitor_share_one_open_conversation(db):
    first = await patient_message(db, "oi", user="v2")
    second = await patient_message(db, "quero marcar", user="v2")

    assert first.conversation.id == second.conversation.id


async def test_same_phone_on_two_channels_is_one_patient(db):
    on_whatsapp = await patient_message(
        db, channel="whatsapp", user="5531987654321", phone="+5531987654321"
    )
    # An old WhatsApp id without the mobile ninth digit, arriving by SMS.
    on_sms = await patient_message(
        db, channel="twilio", user="+553187654321", phone="+5531987654321"
    )

    assert on_whatsapp.message.patient_id == on_sms.message.patient_id
    assert on_whatsapp.conversation.id != on_sms.conversation.id


async def test_a_closed_conversation_is_not_reused(db):
    first = await patient_message(db, "oi", user="v3")
    async with db.session() as session:
        conversation = await session.get(Conversation, first.conversation.id)
        conversation.status = "closed"
    second = await patient_message(db, "oi de novo", user="v3")

    assert second.conversation.id != first.conversation.id
    assert second.conversation.patient_id == first.conversation.patient_id


async def test_record_inbound_keeps_the_button_payload(db):
    async with db.session() as session:
        recorded = await record_inbound(
            session,
            Inbound(
                channel="webchat",
                external_user_id="v4",
                provider_message_id="p1",
                text="Sim",
                payload="/afirmar",
            ),
        )
    assert recorded.message.payload == "/afirmar"


@pytest.mark.parametrize("phone", ["+5511987654321", "+14155552671"])
async def test_a_phone_only_typed_in_a_conversation_never_attracts_that_phones_whatsapp(db, phone):
    messenger = await patient_message(db, "oi", channel="messenger", user="psid-1")
    async with db.session() as session:
        typed_by = await session.get(User, messenger.message.patient_id)
        typed_by.phone_e164 = phone  # what a typed phone leaves: contact data, no match key
    whatsapp = await patient_message(db, channel="whatsapp", user=phone[1:], phone=phone)

    assert whatsapp.message.patient_id != messenger.message.patient_id


async def test_a_recorded_message_is_what_its_row_holds_column_by_column(db):
    await patient_message(db, "oi", user="v9")  # the second message takes the quick path
    recorded = await patient_message(db, "quero marcar", user="v9")

    async with db.session() as session:
        row = await session.get_one(Message, recorded.message.id)
        stored = {c.key: getattr(row, c.key) for c in Message.__table__.columns}
    assert {c.key: getattr(recorded.message, c.key) for c in Message.__table__.columns} == stored
