"""Twilio webhook requests (recorded from Twilio's docs) read without HTTP."""

import pytest

from channels.base import Ignored, Inbound, StatusUpdate
from channels.twilio import Form, parse
from models import DeliveryStatus
from tests.channels.webhooks import load_form


def only(events):
    assert len(events) == 1, events
    return events[0]


def test_an_sms_is_a_patient_message_from_their_phone():
    event = only(parse(load_form("sms_text")))

    assert isinstance(event, Inbound)
    assert event.external_user_id == "+5511987654321"
    assert event.provider_message_id == "SM1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"
    assert (event.text, event.phone) == ("Hello", "+5511987654321")


def test_a_whatsapp_id_without_the_ninth_digit_gets_the_full_mobile_number():
    event = only(parse(load_form("whatsapp_text")))

    assert event.external_user_id == "whatsapp:+551187654321"
    assert event.phone == "+5511987654321"
    assert (event.text, event.display_name) == ("Olá", "Maria")


def test_a_template_button_tap_carries_its_payload():
    event = only(parse(load_form("whatsapp_button_reply")))

    assert (event.text, event.payload) == ("Confirmar", "/confirmar_consulta")


def test_media_and_location_are_kept_as_attachments():
    image = only(parse(load_form("whatsapp_image")))
    location = only(parse(load_form("whatsapp_location")))

    assert image.text == ""
    assert image.attachments[0]["type"] == "image"
    assert image.attachments[0]["url"].endswith("/Media/ME1234567890abcdef1234567890abcdef")
    assert location.attachments == [
        {
            "type": "location",
            "latitude": "-23.561414",
            "longitude": "-46.655881",
            "address": "Av. Paulista, 1578 - Bela Vista, São Paulo - SP",
            "label": "MASP",
        }
    ]


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("status_sent", DeliveryStatus.SENT),
        ("status_delivered", DeliveryStatus.DELIVERED),
        ("status_read", DeliveryStatus.READ),
        ("status_undelivered", DeliveryStatus.FAILED),
    ],
)
def test_status_callbacks_become_delivery_receipts(fixture, status):
    event = only(parse(load_form(fixture)))

    assert event == StatusUpdate("SM6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c", status, error=event.error)


def test_an_undelivered_status_says_why():
    event = only(parse(load_form("status_undelivered")))

    assert event.error.startswith("Twilio error 63016: Failed to send freeform message")


def test_intermediate_statuses_are_ignored():
    assert only(parse(load_form("status_queued"))) == Ignored("status queued")


def test_the_signature_validator_sees_repeated_fields_once_each():
    form = Form([("A", "1"), ("B", "2"), ("A", "3")])

    assert form["A"] == "1"
    assert form.getall("A") == ["1", "3"]
