"""The Messenger channel over real HTTP, sending to the fake Graph API's Send API."""

import copy

import aiohttp
import pytest

from channels.messenger import MessengerChannel
from messaging.outbound import send
from models import AuthorKind, DeliveryStatus, Direction
from tests.channels.webhooks import SECRETS, load_json, post, signed, text_message


def read_by(psid: str, watermark_ms: int) -> dict:
    payload = copy.deepcopy(load_json("messenger", "read"))
    item = payload["entry"][0]["messaging"][0]
    item["sender"]["id"] = psid
    item["read"]["watermark"] = watermark_ms
    return payload


@pytest.fixture
async def messenger(serve):
    return await serve(MessengerChannel)


async def test_the_verification_handshake_uses_messengers_own_token(messenger):
    url = f"{messenger.url}/webhooks/messenger/webhook"
    query = {"hub.mode": "subscribe", "hub.challenge": "CHALLENGE_ACCEPTED"}
    async with aiohttp.ClientSession() as http:
        token = SECRETS["MESSENGER_VERIFY_TOKEN"]
        async with http.get(url, params={**query, "hub.verify_token": token}) as resp:
            assert await resp.text() == "CHALLENGE_ACCEPTED"
        token = SECRETS["WHATSAPP_VERIFY_TOKEN"]
        async with http.get(url, params={**query, "hub.verify_token": token}) as resp:
            assert resp.status == 403


async def test_a_message_is_answered_once_through_the_send_api(messenger, provider):
    await messenger.deliver(text_message("messenger", "9000000000000001", "olá"))
    await messenger.settle()

    [reply] = await provider.wait_for(lambda r: r.recipient == "9000000000000001")
    assert reply.path == "/graph/v24.0/me/messages"
    assert reply.headers["Authorization"] == f"Bearer {SECRETS['MESSENGER_PAGE_ACCESS_TOKEN']}"
    assert reply.json == {
        "recipient": {"id": "9000000000000001"},
        "message": {"text": "eco: olá"},
        "messaging_type": "RESPONSE",
    }
    assert (await messenger.messages())[-1].provider_message_id.startswith("m_fake")


async def test_a_body_signed_for_instagram_is_refused(messenger):
    body, headers = signed("instagram", text_message("messenger", "9000000000000003"))

    assert (await post(messenger.url, "messenger", body, headers))[0] == 403
    assert await messenger.messages() == []


async def test_options_are_quick_replies(messenger, provider):
    messenger.assistant.buttons = [
        {"title": "Agendar uma consulta agora", "payload": "/agendar"},
        {"title": "Falar com a equipe", "payload": "/falar_com_atendente"},
    ]
    await messenger.deliver(text_message("messenger", "9000000000000004"))
    await messenger.settle()

    [reply] = await provider.wait_for(lambda r: r.recipient == "9000000000000004")
    assert reply.json["message"]["quick_replies"] == [
        {"content_type": "text", "title": "Agendar uma consulta", "payload": "/agendar"},
        {"content_type": "text", "title": "Falar com a equipe", "payload": "/falar_com_atendente"},
    ]


async def test_every_event_of_a_batch_is_processed_and_echoes_ignored(messenger, provider):
    await messenger.deliver(load_json("messenger", "batch"))
    await messenger.deliver(load_json("messenger", "echo"))
    await messenger.settle()

    assert sorted(messenger.assistant.texts) == ["first", "second", "third"]
    assert len(provider.sent_to("6245342622212345")) == 2
    assert len(provider.sent_to("5782104231843210")) == 1


async def test_a_read_watermark_marks_every_earlier_reply_read(messenger):
    await messenger.deliver(text_message("messenger", "9000000000000005", "um"))
    await messenger.deliver(text_message("messenger", "9000000000000005", "dois"))
    await messenger.settle()
    replies = [m for m in await messenger.messages() if m.direction == Direction.OUTBOUND]
    watermark = int(replies[0].created_at.timestamp() * 1000) + 1

    await messenger.deliver(read_by("9000000000000005", watermark))

    statuses = [m.delivery_status for m in await messenger.messages() if m.direction == "out"]
    assert statuses == [DeliveryStatus.READ, DeliveryStatus.SENT]
    assert len(messenger.assistant.received) == 2


async def test_after_7_days_not_even_a_person_can_reply(messenger):
    await messenger.deliver(text_message("messenger", "9000000000000007"))
    await messenger.settle()
    conversation_id = (await messenger.messages())[0].conversation_id
    await messenger.age_window(hours=24 * 8)

    message = await send(
        messenger.ctx, conversation_id, text="Oi", author_kind=AuthorKind.ATTENDANT
    )

    stored = {m.id: m for m in await messenger.messages()}[message.id]
    assert stored.delivery_status == DeliveryStatus.FAILED


async def test_a_long_reply_is_split_within_messengers_limit(messenger, provider):
    await messenger.deliver(text_message("messenger", "9000000000000008", "texto " * 500))
    await messenger.settle()

    parts = await provider.wait_for(lambda r: r.recipient == "9000000000000008", count=2)
    assert all(len(part.json["message"]["text"]) <= 2000 for part in parts)
