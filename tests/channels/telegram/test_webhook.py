"""The Telegram channel over real HTTP, sending to the fake Bot API."""

import copy
import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select

from channels.telegram import TelegramChannel
from messaging.outbound import RETRY_DELAYS
from messaging.retries import retry_due_deliveries
from models import ChannelIdentity, DeliveryStatus, Direction, Message, utcnow
from tests.channels.webhooks import (
    SECRETS,
    load_json,
    post,
    signature_headers,
    signed,
    text_message,
)
from tests.factories import patient_message

_update_ids = itertools.count(500_000)
BOT_PATH = f"/telegram/bot{SECRETS['TELEGRAM_BOT_TOKEN']}"


def from_chat(fixture: str, chat_id: int, **changes) -> dict:
    update = copy.deepcopy(load_json("telegram", fixture))
    update["update_id"] = next(_update_ids)
    body = next(value for key, value in update.items() if key != "update_id")
    message = body.get("message", body)
    message["chat"]["id"] = chat_id
    for person in (body.get("from"), message.get("from")):
        if person and not person.get("is_bot"):
            person["id"] = chat_id
    body.update(changes)
    return update


@pytest.fixture
async def telegram(serve):
    return await serve(TelegramChannel)


async def test_a_message_is_answered_once_in_the_same_chat(telegram, provider):
    await telegram.deliver(text_message("telegram", "3000001", "olá"))
    await telegram.settle()

    [reply] = await provider.wait_for(lambda r: r.recipient == "3000001")
    assert reply.path == f"{BOT_PATH}/sendMessage"
    assert reply.json == {"chat_id": "3000001", "text": "eco: olá"}
    assert telegram.assistant.texts == ["olá"]
    assert (await telegram.messages())[-1].provider_message_id.startswith("3000001:")


async def test_a_wrong_secret_token_is_refused(telegram):
    body, headers = signed("telegram", text_message("telegram", "3000002"))
    headers["X-Telegram-Bot-Api-Secret-Token"] = "tg-secret_token-2"

    assert (await post(telegram.url, "telegram", body, headers))[0] == 403
    assert await telegram.messages() == []


async def test_a_body_that_is_not_an_update_gets_a_clear_400(telegram):
    assert (await telegram.deliver({"message": {"text": "oi"}}))[0] == 400
    headers = signature_headers("telegram", b"not json")
    assert (await post(telegram.url, "telegram", b"not json", headers))[0] == 400


async def test_options_are_an_inline_keyboard_and_taps_reach_the_bot_as_payloads(
    telegram, provider
):
    long_payload = '/agendar{"especialidade": "cardiologia", "medico": "Dra. Helena Prado"}'
    telegram.assistant.buttons = [
        {"title": "Confirmar", "payload": "/confirmar_consulta"},
        {"title": "Cardiologia", "payload": long_payload},
    ]
    await telegram.deliver(text_message("telegram", "3000003"))
    await telegram.settle()

    [offer] = await provider.wait_for(lambda r: r.recipient == "3000003")
    keyboard = offer.json["reply_markup"]["inline_keyboard"]
    assert keyboard == [
        [{"text": "Confirmar", "callback_data": "/confirmar_consulta"}],
        [{"text": "Cardiologia", "callback_data": "option:2"}],
    ]
    for data in ("/confirmar_consulta", "option:2"):
        tap = from_chat("callback_query", 3000003)
        tap["callback_query"]["data"] = data
        tap["callback_query"]["id"] = f"cb-{data}"
        tap["callback_query"]["message"]["reply_markup"]["inline_keyboard"] = keyboard
        await telegram.deliver(tap)
        await telegram.settle()

    assert telegram.assistant.texts[1:] == ["/confirmar_consulta", long_payload]
    answered = provider.sent(lambda r: r.path.endswith("/answerCallbackQuery"))
    assert sorted(r.json["callback_query_id"] for r in answered) == [
        "cb-/confirmar_consulta",
        "cb-option:2",
    ]


async def test_an_edit_updates_the_stored_message_without_a_second_reply(telegram, provider):
    await telegram.deliver(text_message("telegram", "3000004", "quero marcar dia 10", "77"))
    await telegram.settle()

    edit = from_chat("edited_message", 3000004)
    edit["edited_message"].update(message_id=77, text="quero marcar dia 11")
    assert (await telegram.deliver(edit))[0] == 200
    await telegram.settle()

    first = (await telegram.messages())[0]
    assert first.text == "quero marcar dia 11"
    assert len(provider.sent_to("3000004")) == 1


async def test_sharing_a_contact_joins_the_patient_known_by_that_phone(telegram):
    on_whatsapp = await patient_message(
        telegram.ctx.db, "oi", channel="whatsapp", user="5511987654321", phone="+5511987654321"
    )
    await telegram.deliver(text_message("telegram", "1111111", "oi, sou eu"))
    await telegram.settle()

    await telegram.deliver(from_chat("contact", 1111111))
    await telegram.settle()

    async with telegram.ctx.db.session() as session:
        identity = (
            await session.execute(
                select(ChannelIdentity).where(ChannelIdentity.channel == "telegram")
            )
        ).scalar_one()
        history = (
            (
                await session.execute(
                    select(Message)
                    .where(Message.patient_id == on_whatsapp.message.patient_id)
                    .order_by(Message.id)
                )
            )
            .scalars()
            .all()
        )
    assert identity.patient_id == on_whatsapp.message.patient_id
    assert [(m.channel, m.text) for m in history if m.direction == Direction.INBOUND] == [
        ("whatsapp", "oi"),
        ("telegram", "oi, sou eu"),
        ("telegram", "+5511987654321"),
    ]


async def test_a_patient_who_blocked_the_bot_gets_a_failed_message_with_the_reason(
    telegram, provider
):
    provider.respond(
        "/sendMessage",
        403,
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    )
    await telegram.deliver(text_message("telegram", "3000005"))
    await telegram.settle()

    reply = (await telegram.messages())[-1]
    assert reply.delivery_status == DeliveryStatus.FAILED
    assert reply.error == "telegram: HTTP 403, Forbidden: bot was blocked by the user"


async def test_a_long_reply_is_split_within_4096_characters_with_the_buttons_on_the_last_part(
    telegram, provider
):
    telegram.assistant.buttons = [{"title": "Confirmar", "payload": "/confirmar_consulta"}]
    await telegram.deliver(text_message("telegram", "3000006", "palavra " * 1100))
    await telegram.settle()

    parts = await provider.wait_for(lambda r: r.recipient == "3000006", count=3)
    assert all(len(part.json["text"]) <= 4096 for part in parts)
    assert " ".join(p.json["text"] for p in parts).split() == ("eco: " + "palavra " * 1100).split()
    assert ["reply_markup" in part.json for part in parts] == [False, False, True]
    [reply] = [m for m in await telegram.messages() if m.direction == Direction.OUTBOUND]
    assert (reply.delivery_status, reply.parts_sent) == (DeliveryStatus.SENT, 3)


async def test_a_throttled_reply_is_not_retried_before_telegrams_retry_after(telegram, provider):
    provider.respond(
        "/sendMessage",
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 300",
            "parameters": {"retry_after": 300},
        },
    )
    await telegram.deliver(text_message("telegram", "3000007"))
    await telegram.settle()
    [reply] = [m for m in await telegram.messages() if m.direction == Direction.OUTBOUND]
    assert reply.delivery_status == DeliveryStatus.PENDING
    assert reply.retry_not_before - utcnow() > timedelta(seconds=290)

    async with telegram.ctx.db.session() as session:
        (await session.get(Message, reply.id)).created_at -= timedelta(seconds=RETRY_DELAYS[0])
    assert await retry_due_deliveries(telegram.ctx) == 0  # the schedule's 5 s are not enough

    async with telegram.ctx.db.session() as session:
        (await session.get(Message, reply.id)).retry_not_before -= timedelta(seconds=300)
    assert await retry_due_deliveries(telegram.ctx) == 1
    [reply] = [m for m in await telegram.messages() if m.direction == Direction.OUTBOUND]
    assert reply.delivery_status == DeliveryStatus.SENT
    assert len(provider.sent_to("3000007")) == 2
