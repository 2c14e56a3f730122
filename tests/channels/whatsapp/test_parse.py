"""WhatsApp Cloud API webhook bodies (recorded from Meta's reference) read without HTTP."""

import copy

import pytest

from channels.base import Ignored, Inbound, StatusUpdate
from channels.whatsapp import parse
from models import DeliveryStatus
from tests.channels.webhooks import load_json


def only(events):
    assert len(events) == 1, events
    return events[0]


def test_a_text_message_is_one_patient_message_with_phone_and_name():
    event = only(parse(load_json("whatsapp", "text")))

    assert isinstance(event, Inbound)
    assert event.external_user_id == "16505551234"
    assert event.provider_message_id.startswith("wamid.")
    assert event.text == "Does it come in another color?"
    assert event.phone == "+16505551234"
    assert event.display_name == "Sheena Nelson"
    assert event.aliases == {"wa_id": "16505551234"}
    assert event.sent_at.year == 2025


def test_a_user_with_a_username_and_no_phone_is_known_by_the_business_scoped_id():
    event = only(parse(load_json("whatsapp", "text_bsuid")))

    assert event.external_user_id == "US.13491208655302741918"
    assert event.phone is None
    assert event.aliases == {"bsuid": "US.13491208655302741918"}


def test_phone_and_business_scoped_id_are_both_kept():
    event = only(parse(load_json("whatsapp", "text_phone_and_bsuid")))

    assert event.external_user_id == "16505551234"
    assert event.aliases == {"wa_id": "16505551234", "bsuid": "US.13491208655302741918"}


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("image", "image"),
        ("audio_voice", "audio"),
        ("document", "document"),
        ("sticker", "sticker"),
    ],
)
def test_media_is_kept_as_an_attachment_reference(fixture, kind):
    event = only(parse(load_json("whatsapp", fixture)))

    attachment = only(event.attachments)
    assert attachment["type"] == kind
    assert attachment["id"].isdigit()
    assert "mime_type" in attachment


def test_a_document_caption_is_the_text():
    event = only(parse(load_json("whatsapp", "document")))

    assert event.text == "Pedido de exame"
    assert event.attachments[0]["filename"] == "pedido.pdf"


def test_a_voice_note_is_marked_as_such():
    assert only(parse(load_json("whatsapp", "audio_voice"))).attachments[0]["voice"] is True


@pytest.mark.parametrize(
    ("fixture", "title", "payload"),
    [
        ("interactive_button_reply", "Change", "change-button"),
        ("interactive_list_reply", "Priority Mail Express", "priority_express"),
        ("template_button", "Unsubscribe from Promos", "Unsubscribe from Promos"),
    ],
)
def test_button_and_list_replies_carry_the_payload_we_offered(fixture, title, payload):
    event = only(parse(load_json("whatsapp", fixture)))

    assert (event.text, event.payload) == (title, payload)


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [("location", "location"), ("contacts", "contacts"), ("unsupported", "unsupported")],
)
def test_location_contact_cards_and_unsupported_messages_are_attachments(fixture, kind):
    event = only(parse(load_json("whatsapp", fixture)))

    assert event.text == ""
    assert event.attachments[0]["type"] == kind


def test_a_location_keeps_its_coordinates():
    attachment = only(parse(load_json("whatsapp", "location"))).attachments[0]

    assert (attachment["latitude"], attachment["longitude"]) == (37.483307, -122.148981)


@pytest.mark.parametrize("fixture", ["reaction", "system_user_changed_number"])
def test_reactions_and_system_notices_are_acknowledged_and_ignored(fixture):
    assert isinstance(only(parse(load_json("whatsapp", fixture))), Ignored)


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("status_sent", DeliveryStatus.SENT),
        ("status_delivered", DeliveryStatus.DELIVERED),
        ("status_read", DeliveryStatus.READ),
        ("status_failed", DeliveryStatus.FAILED),
    ],
)
def test_status_callbacks_become_delivery_receipts(fixture, status):
    event = only(parse(load_json("whatsapp", fixture)))

    assert isinstance(event, StatusUpdate)
    assert event.status == status
    assert event.provider_message_id == "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA"


def test_a_failed_status_says_why():
    event = only(parse(load_json("whatsapp", "status_failed")))

    assert event.error.startswith("WhatsApp error 131026: Message undeliverable")


def test_every_event_of_a_batch_is_read():
    events = parse(load_json("whatsapp", "batch"))

    messages = [e for e in events if isinstance(e, Inbound)]
    assert [(m.external_user_id, m.text) for m in messages] == [
        ("16505551234", "first"),
        ("16315551181", "second"),
        ("16505551234", "third"),
    ]
    assert [m.display_name for m in messages] == ["Sheena Nelson", "Kerry Fisher", "Sheena Nelson"]
    statuses = [e.status for e in events if isinstance(e, StatusUpdate)]
    assert statuses == [DeliveryStatus.DELIVERED, DeliveryStatus.READ]


def test_other_webhook_fields_are_ignored():
    assert only(parse(load_json("whatsapp", "template_status_update"))) == Ignored(
        "field message_template_status_update"
    )


def test_an_unreadable_item_is_skipped_and_the_rest_of_the_batch_kept():
    payload = copy.deepcopy(load_json("whatsapp", "batch"))
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]

    events = parse(payload)

    assert Ignored("malformed message") in events
    assert [e.text for e in events if isinstance(e, Inbound)] == ["second", "third"]
