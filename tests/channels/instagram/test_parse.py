"""Instagram messaging webhook bodies (recorded from Meta's reference) read without HTTP."""

import pytest

from channels.base import Ignored, Inbound, StatusUpdate, Unsent
from channels.instagram import parse
from models import DeliveryStatus
from tests.channels.webhooks import load_json

IGSID = "1254459154682919"


def only(events):
    assert len(events) == 1, events
    return events[0]


def test_a_text_is_a_patient_message_from_the_instagram_scoped_id():
    event = only(parse(load_json("instagram", "text")))

    assert isinstance(event, Inbound)
    assert (event.channel, event.external_user_id, event.text) == (
        "instagram",
        IGSID,
        "Hello World",
    )


@pytest.mark.parametrize(
    ("fixture", "text", "payload"),
    [("quick_reply", "Azul", "COLOR_BLUE"), ("postback", "Ver horários", "ICEBREAKER_HORARIOS")],
)
def test_quick_replies_and_ice_breakers_carry_their_payload(fixture, text, payload):
    event = only(parse(load_json("instagram", fixture)))

    assert (event.text, event.payload) == (text, payload)


@pytest.mark.parametrize(
    ("fixture", "kind"), [("image", "image"), ("story_mention", "story_mention")]
)
def test_images_and_story_mentions_are_attachment_references(fixture, kind):
    event = only(parse(load_json("instagram", fixture)))

    assert event.text == ""
    assert event.attachments[0]["type"] == kind
    assert event.attachments[0]["url"].startswith("https://lookaside.fbsbx.com/")


def test_an_unsent_message_is_reported_by_its_id():
    event = only(parse(load_json("instagram", "unsent")))

    assert event == Unsent(only(parse(load_json("instagram", "text"))).provider_message_id)


def test_a_read_receipt_names_the_message_read():
    event = only(parse(load_json("instagram", "read")))

    assert isinstance(event, StatusUpdate)
    assert event.status == DeliveryStatus.READ


def test_reactions_are_ignored():
    assert only(parse(load_json("instagram", "reaction"))) == Ignored("reaction")
