import pytest

from core.contacts import mask_cpf, normalize_cpf, normalize_email, normalize_phone, phone_match_key
from messaging.history import latest_conversation
from messaging.identities import link_claimed_contact
from models import ChannelIdentity, Conversation, Message, User
from tests.factories import patient_message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+55 11 98765-4321", "+5511987654321"),
        ("(11) 98765-4321", "+5511987654321"),
        ("5511987654321", "+5511987654321"),
        ("553187654321", "+5531987654321"),  # WhatsApp id without the ninth digit
        ("+55 11 3000-1000", "+551130001000"),  # landline keeps 8 digits
        ("+1 415 555 2671", "+14155552671"),
        ("12345", None),
        ("", None),
    ],
)
def test_normalize_phone(raw, expected):
    assert normalize_phone(raw) == expected


def test_match_key_ignores_the_ninth_digit():
    assert phone_match_key("+5531987654321") == phone_match_key(normalize_phone("553187654321"))
    assert phone_match_key("+14155552671") == "14155552671"


def test_normalize_email():
    assert normalize_email("  Maria.Silva@Gmail.COM ") == "maria.silva@gmail.com"
    assert normalize_email("not-an-email") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("529.982.247-25", "52998224725"),
        ("52998224725", "52998224725"),
        ("529.982.247-24", None),  # wrong second check digit
        ("529.982.247-15", None),  # wrong first check digit
        ("111.111.111-11", None),  # passes the checksum, never issued
        ("1234567890", None),
        ("", None),
    ],
)
def test_normalize_cpf(raw, expected):
    assert normalize_cpf(raw) == expected


def test_mask_cpf_shows_only_the_middle_digits():
    assert mask_cpf("52998224725") == "***.982.247-**"


async def test_a_person_known_by_either_of_two_provider_ids_is_one_identity(db):
    by_phone = await patient_message(
        db, channel="whatsapp", user="16505551234", aliases={"wa_id": "16505551234"}
    )
    both = await patient_message(
        db,
        channel="whatsapp",
        user="16505551234",
        aliases={"wa_id": "16505551234", "bsuid": "US.1349"},
    )
    # The phone is hidden now (the user adopted a username): the business-scoped id finds them.
    by_bsuid = await patient_message(
        db, channel="whatsapp", user="US.1349", aliases={"bsuid": "US.1349"}
    )

    assert by_phone.identity.id == both.identity.id == by_bsuid.identity.id
    assert by_bsuid.conversation.id == by_phone.conversation.id
    assert by_bsuid.identity.details == {"wa_id": "16505551234", "bsuid": "US.1349"}


async def test_a_verified_phone_arriving_later_joins_the_patient_who_has_it(db):
    on_whatsapp = await patient_message(
        db, "oi", channel="whatsapp", user="5511987654321", phone="+5511987654321"
    )
    on_telegram = await patient_message(db, "olá", channel="telegram", user="1111111")
    assert on_telegram.message.patient_id != on_whatsapp.message.patient_id

    shared = await patient_message(
        db, "+5511987654321", channel="telegram", user="1111111", phone="+5511987654321"
    )

    patient_id = on_whatsapp.message.patient_id
    assert shared.message.patient_id == patient_id
    async with db.session() as session:
        moved = await session.get(Message, on_telegram.message.id)
        old = await session.get(User, on_telegram.message.patient_id)
        conversation = await session.get(Conversation, on_telegram.conversation.id)
    assert moved.patient_id == conversation.patient_id == patient_id
    assert old.is_active is False


async def test_a_patient_confirming_their_cpf_on_instagram_joins_their_record(db):
    known = await patient_message(
        db, "oi", channel="whatsapp", user="5511900000001", phone="+5511900000001"
    )
    async with db.session() as session:
        patient = await session.get(User, known.message.patient_id)
        patient.cpf = "52998224725"
        patient.name = "Maria Silva"
    on_instagram = await patient_message(db, "oi", channel="instagram", user="1254459154682919")

    async with db.session() as session:
        linked = await link_claimed_contact(
            session, on_instagram.message.patient_id, cpf="52998224725"
        )

    assert linked.id == known.message.patient_id
    async with db.session() as session:
        identity = await session.get(ChannelIdentity, on_instagram.identity.id)
    assert identity.patient_id == known.message.patient_id


async def test_a_phone_nobody_has_yet_becomes_the_patients(db):
    on_messenger = await patient_message(db, "oi", channel="messenger", user="6245342622212345")

    async with db.session() as session:
        patient = await link_claimed_contact(
            session, on_messenger.message.patient_id, phone="+5511912345678"
        )
    later = await patient_message(
        db, "oi", channel="whatsapp", user="5511912345678", phone="+5511912345678"
    )

    assert later.message.patient_id == patient.id == on_messenger.message.patient_id


async def test_a_merged_away_patient_is_never_matched_again(db):
    first = await patient_message(db, channel="messenger", user="psid-1")
    async with db.session() as session:
        await link_claimed_contact(session, first.message.patient_id, phone="+5511955554444")
    second = await patient_message(
        db, channel="whatsapp", user="5511955554444", phone="+5511955554444"
    )
    other = await patient_message(db, channel="instagram", user="igsid-1")
    async with db.session() as session:
        await link_claimed_contact(session, other.message.patient_id, phone="+5511955554444")

    again = await patient_message(
        db, channel="twilio", user="+5511955554444", phone="+5511955554444"
    )

    assert again.message.patient_id == second.message.patient_id == first.message.patient_id


async def test_a_reply_to_a_merged_away_patient_reaches_the_conversation_it_moved_to(db):
    on_messenger = await patient_message(db, "oi", channel="messenger", user="psid-merged")
    known = await patient_message(
        db, "oi", channel="whatsapp", user="5511955550000", phone="+5511955550000"
    )
    async with db.session() as session:
        (await session.get(User, known.message.patient_id)).cpf = "52998224725"
    async with db.session() as session:
        await link_claimed_contact(session, on_messenger.message.patient_id, cpf="52998224725")

    async with db.session() as session:
        found = await latest_conversation(session, on_messenger.message.patient_id, "messenger")

    assert found.id == on_messenger.conversation.id
    assert found.patient_id == known.message.patient_id
