"""The WhatsApp Cloud channel over real HTTP: webhook in, sending to the fake Graph API."""

import copy
import json

import aiohttp
import pytest
from sqlalchemy import select

from channels.base import HANDOFF_PAYLOAD
from channels.whatsapp import WhatsAppChannel
from core.catalog import t
from core.context import Reach
from messaging.outbound import send
from models import AuthorKind, ChannelIdentity, DeliveryStatus, Direction, Message, OutboundPart
from tests.channels.webhooks import (
    SECRETS,
    load_json,
    post,
    receipt,
    signed,
    text_message,
)


@pytest.fixture
async def whatsapp(serve):
    return await serve(WhatsAppChannel)


async def test_the_verification_handshake_echoes_the_challenge(whatsapp):
    query = {
        "hub.mode": "subscribe",
        "hub.challenge": "1158201444",
        "hub.verify_token": SECRETS["WHATSAPP_VERIFY_TOKEN"],
    }
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{whatsapp.url}/webhooks/whatsapp/webhook", params=query) as resp:
            assert (resp.status, await resp.text()) == (200, "1158201444")
        query["hub.verify_token"] = "wrong"
        async with http.get(f"{whatsapp.url}/webhooks/whatsapp/webhook", params=query) as resp:
            assert resp.status == 403


async def test_a_text_is_recorded_answered_once_and_the_reply_goes_to_the_sender(
    whatsapp, provider
):
    status, body = await whatsapp.deliver(text_message("whatsapp", "5511987650001", "olá"))
    await whatsapp.settle()

    assert (status, body) == (200, "EVENT_RECEIVED")
    assert whatsapp.assistant.texts == ["olá"]
    [reply] = await provider.wait_for(lambda r: r.recipient == "5511987650001")
    assert reply.path == "/graph/v24.0/106540352242922/messages"
    assert reply.headers["Authorization"] == f"Bearer {SECRETS['WHATSAPP_ACCESS_TOKEN']}"
    assert reply.json["text"]["body"] == "eco: olá"
    messages = await whatsapp.messages()
    assert [(m.direction, m.text, m.delivery_status) for m in messages] == [
        (Direction.INBOUND, "olá", DeliveryStatus.RECEIVED),
        (Direction.OUTBOUND, "eco: olá", DeliveryStatus.SENT),
    ]
    assert messages[1].provider_message_id.startswith("wamid.fake")
    assert messages[0].processed_at is not None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": "md5=abc"},
    ],
)
async def test_a_missing_or_wrong_signature_is_refused_and_nothing_is_kept(
    whatsapp, provider, headers
):
    body, _ = signed("whatsapp", text_message("whatsapp", "5511987650004"))

    status, _ = await post(whatsapp.url, "whatsapp", body, headers)
    await whatsapp.settle()

    assert status == 403
    assert await whatsapp.messages() == []
    assert whatsapp.assistant.received == []
    assert provider.sent_to("5511987650004") == []


async def test_a_body_signed_with_another_apps_secret_is_refused(whatsapp):
    body, headers = signed("messenger", text_message("whatsapp", "5511987650005"))

    assert (await post(whatsapp.url, "whatsapp", body, headers))[0] == 403


async def test_json_without_entries_gets_a_clear_400(whatsapp):
    status, text = await whatsapp.deliver({"object": "whatsapp_business_account"})

    assert status == 400
    assert "entry" in json.loads(text)["error"]


async def test_every_message_and_status_of_a_batch_is_processed(whatsapp, provider):
    status, _ = await whatsapp.deliver(load_json("whatsapp", "batch"))
    await whatsapp.settle()

    assert status == 200
    assert sorted(whatsapp.assistant.texts) == ["first", "second", "third"]
    inbound = [m for m in await whatsapp.messages() if m.direction == Direction.INBOUND]
    assert len({m.patient_id for m in inbound}) == 2
    assert len(provider.sent_to("16505551234")) == 2
    assert len(provider.sent_to("16315551181")) == 1


async def test_a_failed_status_is_recorded_with_its_reason_for_staff(whatsapp):
    await whatsapp.deliver(text_message("whatsapp", "5511987650007"))
    await whatsapp.settle()
    reply = next(m for m in await whatsapp.messages() if m.direction == Direction.OUTBOUND)

    await whatsapp.deliver(
        receipt("whatsapp", "status_failed", reply.provider_message_id, "5511987650007")
    )
    await whatsapp.settle()

    async with whatsapp.ctx.db.session() as session:
        stored = await session.get(Message, reply.id)
    assert stored.delivery_status == DeliveryStatus.FAILED
    assert "131026" in stored.error
    events = whatsapp.ctx.bus.of_type("message")
    assert events[-1]["message"]["delivery_status"] == "failed"


async def test_a_photo_gets_a_reply_offering_a_person_and_never_reaches_the_bot(whatsapp, provider):
    payload = copy.deepcopy(load_json("whatsapp", "image"))
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "5511987650008"
    payload["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = "5511987650008"

    await whatsapp.deliver(payload)
    await whatsapp.settle()

    assert whatsapp.assistant.received == []
    [offer] = await provider.wait_for(lambda r: r.recipient == "5511987650008")
    interactive = offer.json["interactive"]
    assert interactive["body"]["text"] == t("channel.unreadable")
    assert interactive["action"]["buttons"] == [
        {"type": "reply", "reply": {"id": HANDOFF_PAYLOAD, "title": t("channel.talk_to_person")}}
    ]
    photo = (await whatsapp.messages())[0]
    assert photo.attachments[0]["type"] == "image"

    # Tapping the button reaches the bot as the handoff intent it stands for.
    tap = copy.deepcopy(load_json("whatsapp", "interactive_button_reply"))
    message = tap["entry"][0]["changes"][0]["value"]["messages"][0]
    message["from"] = "5511987650008"
    message["interactive"]["button_reply"] = {
        "id": HANDOFF_PAYLOAD,
        "title": t("channel.talk_to_person"),
    }
    tap["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = "5511987650008"
    await whatsapp.deliver(tap)
    await whatsapp.settle()
    assert whatsapp.assistant.texts == [HANDOFF_PAYLOAD]


async def test_a_user_known_only_by_business_scoped_id_is_answered_by_that_id(whatsapp, provider):
    await whatsapp.deliver(load_json("whatsapp", "text_bsuid"))
    await whatsapp.settle()

    [reply] = await provider.wait_for(
        lambda r: r.json.get("recipient") == "US.13491208655302741918"
    )
    assert "to" not in reply.json
    # The same person later shows their phone: still one identity, now answered by phone.
    await whatsapp.deliver(load_json("whatsapp", "text_phone_and_bsuid"))
    await whatsapp.settle()
    async with whatsapp.ctx.db.session() as session:
        identities = (await session.execute(select(ChannelIdentity))).scalars().all()
    assert len(identities) == 1
    assert identities[0].details == {"bsuid": "US.13491208655302741918", "wa_id": "16505551234"}
    await provider.wait_for(lambda r: r.json.get("to") == "16505551234")


async def test_outside_the_24h_window_a_free_text_fails_clearly(whatsapp, provider):
    await whatsapp.deliver(text_message("whatsapp", "5511987650009"))
    await whatsapp.settle()
    conversation_id = (await whatsapp.messages())[0].conversation_id
    await whatsapp.age_window(hours=25)

    message = await send(
        whatsapp.ctx, conversation_id, text="Bom dia!", author_kind=AuthorKind.ATTENDANT
    )

    async with whatsapp.ctx.db.session() as session:
        stored = await session.get(Message, message.id)
    assert stored.delivery_status == DeliveryStatus.FAILED
    assert "24 h" in stored.error and "template" in stored.error
    assert len(provider.sent_to("5511987650009")) == 1  # only the bot's reply earlier


async def test_outside_the_24h_window_the_messages_template_is_sent(whatsapp, provider):
    await whatsapp.deliver(text_message("whatsapp", "5511987650010"))
    await whatsapp.settle()
    await whatsapp.age_window(hours=30)
    sender = whatsapp.ctx.senders["whatsapp"]
    async with whatsapp.ctx.db.session() as session:
        message = await session.get(Message, (await whatsapp.messages())[-1].id)
        identity = (await session.execute(select(ChannelIdentity))).scalars().one()
    message.template = {"parameters": ["Maria", "10/03 às 14h"]}
    message.buttons = [{"title": "Confirmar", "payload": '/confirmar{"id": 7}'}]

    await sender.deliver(message, identity, Reach.TEMPLATE)

    [request] = provider.sent(lambda r: r.json.get("type") == "template")
    template = request.json["template"]
    assert template["name"] == "lembrete_consulta"
    assert template["language"] == {"code": "pt_BR"}
    assert template["components"] == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Maria"},
                {"type": "text", "text": "10/03 às 14h"},
            ],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "0",
            "parameters": [{"type": "payload", "payload": '/confirmar{"id": 7}'}],
        },
    ]


async def test_a_reply_in_parts_is_delivered_when_every_part_is_and_failed_if_any_part_is(
    whatsapp, provider
):
    person = "5511987650011"
    await whatsapp.deliver(text_message("whatsapp", person, "palavra " * 600))
    await whatsapp.settle()
    await provider.wait_for(lambda r: r.recipient == person, count=2)

    async def status() -> DeliveryStatus:
        [reply] = [m for m in await whatsapp.messages() if m.direction == Direction.OUTBOUND]
        return reply.delivery_status

    async with whatsapp.ctx.db.session() as session:
        query = select(OutboundPart.provider_message_id).order_by(OutboundPart.position)
        first_id, second_id = (await session.execute(query)).scalars().all()
    await whatsapp.deliver(receipt("whatsapp", "status_delivered", first_id, person))
    assert await status() == DeliveryStatus.SENT  # the rest has not arrived yet
    await whatsapp.deliver(receipt("whatsapp", "status_read", second_id, person))
    assert await status() == DeliveryStatus.DELIVERED
    await whatsapp.deliver(receipt("whatsapp", "status_failed", first_id, person))
    assert await status() == DeliveryStatus.FAILED
