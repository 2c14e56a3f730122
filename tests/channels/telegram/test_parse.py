"""Telegram updates (recorded from the Bot API's webhook guide) read without HTTP."""

import copy
from datetime import UTC, datetime

import pytest

from channels.base import Edit, Ignored, Inbound
from channels.telegram import CallbackAnswer, parse
from tests.channels.webhooks import load_json


def only(events):
    assert len(events) == 1, events
    return events[0]


def test_a_text_is_a_patient_message_from_the_private_chat():
    event = only(parse(load_json("telegram", "text")))

    assert isinstance(event, Inbound)
    assert event.external_user_id == "1111111"
    assert event.provider_message_id == "1111111:1365"
    assert event.text == "/start"
    assert event.display_name == "Test Test Lastname"
    assert event.sent_at == datetime(2015, 9, 7, 17, 5, 32, tzinfo=UTC)


def test_a_photo_keeps_only_its_largest_size():
    update = load_json("telegram", "photo")
    largest = update["message"]["photo"][1]  # 1280 x 960

    event = only(parse(update))

    assert event.attachments == [{"type": "image", "file_id": largest["file_id"]}]


@pytest.mark.parametrize(
    ("fixture", "kind", "text"),
    [
        ("voice", "audio", ""),
        ("document", "document", "Resultado do exame"),
        ("location", "location", ""),
    ],
)
def test_voice_documents_and_locations_are_attachments(fixture, kind, text):
    event = only(parse(load_json("telegram", fixture)))

    assert event.attachments[0]["type"] == kind
    assert event.text == text


def test_sharing_ones_own_contact_gives_the_verified_phone():
    event = only(parse(load_json("telegram", "contact")))

    assert event.phone == "+5511987654321"
    assert event.text == "+5511987654321"
    assert event.attachments == []


def test_someone_elses_contact_card_is_only_an_attachment():
    event = only(parse(load_json("telegram", "contact_of_someone_else")))

    assert event.phone is None
    assert event.attachments == [{"type": "contact"}]


def test_an_edited_message_updates_the_one_it_edits():
    assert only(parse(load_json("telegram", "edited_message"))) == Edit(
        "1111111:1365", "Edited text"
    )


def test_a_button_tap_is_the_buttons_payload_and_must_be_answered():
    message, answer = parse(load_json("telegram", "callback_query"))

    assert message.provider_message_id == "callback:4382bfdwdsb323b2d9"
    assert (message.external_user_id, message.text, message.payload) == (
        "1111111",
        "Button text",
        "Data from button callback",
    )
    assert answer == CallbackAnswer("4382bfdwdsb323b2d9")


def test_a_tap_on_an_option_too_long_for_telegram_is_its_title():
    update = copy.deepcopy(load_json("telegram", "callback_query"))
    update["callback_query"]["data"] = "option:1"
    update["callback_query"]["message"]["reply_markup"]["inline_keyboard"][0][0][
        "callback_data"
    ] = "option:1"

    message, _ = parse(update)

    assert (message.text, message.payload) == ("Button text", None)


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [("my_chat_member", "my_chat_member"), ("group_message", "supergroup chat message")],
)
def test_chat_membership_and_group_messages_are_ignored(fixture, kind):
    assert only(parse(load_json("telegram", fixture))) == Ignored(kind)


def test_an_unreadable_update_is_ignored_not_fatal():
    update = copy.deepcopy(load_json("telegram", "text"))
    del update["message"]["date"]

    assert only(parse(update)) == Ignored("malformed update")
