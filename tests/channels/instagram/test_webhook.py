"""The Instagram Direct channel over real HTTP: what differs from Messenger (its own app
secret, a shorter text limit, unsent messages, read receipts by message id)."""

import copy

import pytest

from channels.instagram import InstagramChannel
from core.catalog import t
from models import DeliveryStatus, Direction
from tests.channels.webhooks import load_json, post, signed, text_message


def from_person(fixture: str, igsid: str, mid: str) -> dict:
    payload = copy.deepcopy(load_json("instagram", fixture))
    item = payload["entry"][0]["messaging"][0]
    item["sender"]["id"] = igsid
    next(value for key, value in item.items() if key in ("message", "read"))["mid"] = mid
    return payload


@pytest.fixture
async def instagram(serve):
    return await serve(InstagramChannel)


async def test_a_direct_message_is_answered_within_instagrams_limit(instagram, provider):
    await instagram.deliver(text_message("instagram", "7000000000000001", "palavra " * 200))
    await instagram.settle()

    parts = await provider.wait_for(lambda r: r.recipient == "7000000000000001", count=2)
    assert all(len(p.json["message"]["text"]) <= 1000 for p in parts)
    assert parts[0].headers["Authorization"] == "Bearer ig-access-token"


async def test_a_body_signed_with_the_messenger_secret_is_refused(instagram):
    body, headers = signed("messenger", text_message("instagram", "7000000000000002"))

    assert (await post(instagram.url, "instagram", body, headers))[0] == 403


async def test_an_unsent_message_disappears_from_the_history(instagram):
    await instagram.deliver(
        text_message("instagram", "7000000000000003", "meu CPF é 123", "aWdf-unsent-1")
    )
    await instagram.settle()

    await instagram.deliver(from_person("unsent", "7000000000000003", "aWdf-unsent-1"))

    first = (await instagram.messages())[0]
    assert first.text == t("channel.unsent")
    assert len(instagram.assistant.received) == 1


async def test_a_read_receipt_marks_the_message_it_names(instagram):
    await instagram.deliver(text_message("instagram", "7000000000000004"))
    await instagram.settle()
    reply = next(m for m in await instagram.messages() if m.direction == Direction.OUTBOUND)

    await instagram.deliver(from_person("read", "7000000000000004", reply.provider_message_id))

    reply = next(m for m in await instagram.messages() if m.direction == Direction.OUTBOUND)
    assert reply.delivery_status == DeliveryStatus.READ


async def test_every_message_of_a_batch_is_processed_and_reactions_ignored(instagram, provider):
    status, _ = await instagram.deliver(load_json("instagram", "batch"))
    await instagram.settle()

    assert status == 200
    assert sorted(instagram.assistant.texts) == ["first", "second", "third"]
    inbound = [m for m in await instagram.messages() if m.direction == Direction.INBOUND]
    assert len({m.patient_id for m in inbound}) == 2
    assert len(provider.sent_to("1254459154682919")) == 2
    assert len(provider.sent_to("1254459154682920")) == 1
