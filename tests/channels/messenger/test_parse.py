"""Messenger webhook bodies (recorded from the Messenger Platform reference) read without HTTP."""

from datetime import UTC, datetime

import pytest

from channels.base import Ignored, Inbound, StatusUpdate, Watermark
from channels.messenger import parse
from models import DeliveryStatus
from tests.channels.webhooks import load_json

PSID = "6245342622212345"


def only(events):
    assert len(events) == 1, events
    return events[0]


def test_a_text_is_a_patient_message_from_the_page_scoped_id():
    event = only(parse(load_json("messenger", "text")))

    assert isinstance(event, Inbound)
    assert (event.external_user_id, event.text) == (PSID, "This is a text message")
    assert event.provider_message_id.startswith("m_")
    assert event.sent_at == datetime(2020, 3, 2, 18, 27, 46, 767000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fixture", "text", "payload"),
    [
        ("quick_reply", "Red", "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED"),
        ("postback", "Get Started", "GET_STARTED_PAYLOAD"),
    ],
)
def test_quick_replies_and_postbacks_carry_their_payload(fixture, text, payload):
    event = only(parse(load_json("messenger", fixture)))

    assert (event.text, event.payload) == (text, payload)


def test_an_image_is_an_attachment_reference():
    event = only(parse(load_json("messenger", "image")))

    assert event.text == ""
    assert event.attachments == [
        {"type": "image", "url": "https://scontent.xx.fbcdn.net/v/t1.15752-9/example.jpg"}
    ]


def test_delivery_receipts_name_messages_and_a_watermark():
    events = parse(load_json("messenger", "delivery"))

    watermark = datetime(2016, 3, 22, 17, 47, 36, 253000, tzinfo=UTC)
    assert events == [
        StatusUpdate("mid.1458668856218:ed81099e15d3f4f233", DeliveryStatus.DELIVERED),
        Watermark(PSID, DeliveryStatus.DELIVERED, watermark),
    ]


def test_a_read_receipt_is_a_watermark():
    event = only(parse(load_json("messenger", "read")))

    assert event == Watermark(
        PSID, DeliveryStatus.READ, datetime(2016, 3, 22, 17, 47, 36, 253000, tzinfo=UTC)
    )


@pytest.mark.parametrize(("fixture", "kind"), [("reaction", "reaction"), ("echo", "echo")])
def test_reactions_and_our_own_echoes_are_ignored(fixture, kind):
    assert only(parse(load_json("messenger", fixture))) == Ignored(kind)


def test_every_messaging_item_of_every_entry_is_read():
    events = parse(load_json("messenger", "batch"))

    assert [(e.external_user_id, e.text) for e in events if isinstance(e, Inbound)] == [
        (PSID, "first"),
        ("5782104231843210", "second"),
        (PSID, "third"),
    ]
    assert isinstance(events[-1], Watermark)
