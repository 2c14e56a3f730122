"""What every channel shares (the webhook route, messaging/inbound.py, channels/base.py),
shown through real webhooks: fast
acknowledgement, replay after a crash or a failed routing, the handoff gate, typed options,
disabled channels, the bad requests every provider may send, delivery receipts in any order
(even before the send was answered), and long texts sent in parts."""

import asyncio
import json
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from channels.base import Inbound, numbered_options, split_text, typed_option
from channels.outbox import OutboxSender
from channels.registry import PROVIDERS, build_senders, enabled_channels
from channels.telegram import TelegramChannel
from channels.whatsapp import WhatsAppChannel
from core.settings import Settings
from messaging import outbound as delivery
from messaging.history import record_inbound
from messaging.inbound import Inbox
from messaging.outbound import RETRY_DELAYS, send
from messaging.retries import UNCLAIMED_STATUS_TTL, retry_due_deliveries
from models import (
    AuthorKind,
    Conversation,
    DeliveryStatus,
    Direction,
    Message,
    OutboundPart,
    Owner,
    utcnow,
)
from tests.channels.webhooks import (
    ROOT,
    SIGNATURE_HEADER,
    deliver,
    load_form,
    load_json,
    load_mail,
    post,
    receipt,
    replies_to,
    signature_headers,
    signed,
    text_message,
    webhook_path,
)

CONNECTORS = {channel.name: channel for channel in PROVIDERS}
SENDER = {
    "whatsapp": "5511987650301",
    "twilio": "+5511987650301",
    "messenger": "9000000000000301",
    "instagram": "7000000000000301",
    "telegram": "3000301",
    "email": "redelivery@example.com",
}
JSON_CHANNELS = ["whatsapp", "messenger", "instagram", "telegram"]
# A recorded event of a type the clinic does not act on, per channel.
UNKNOWN_EVENT = {
    "whatsapp": "template_status_update",
    "twilio": "status_queued",
    "messenger": "reaction",
    "instagram": "reaction",
    "telegram": "my_chat_member",
    "email": "read_receipt",
}
# The receipts each channel sends about one of our messages, most advanced first.
RECEIPTS = {
    "whatsapp": ["status_read", "status_delivered", "status_sent"],
    "twilio": ["status_read", "status_delivered", "status_sent"],
    "messenger": ["read", "delivery"],
    "instagram": ["read"],
}
# A receipt that can beat the send's own answer (Twilio calls back at once), and the status
# it stands for.
EARLY_RECEIPT = {
    "whatsapp": ("status_failed", DeliveryStatus.FAILED),
    "twilio": ("status_undelivered", DeliveryStatus.FAILED),
    "messenger": ("delivery", DeliveryStatus.DELIVERED),
    "instagram": ("read", DeliveryStatus.READ),
}
# Where each provider takes a message, for scripting its answers.
SEND_PATH = {
    "whatsapp": "/messages",
    "twilio": "Messages.json",
    "messenger": "/me/messages",
    "instagram": "/me/messages",
    "telegram": "/sendMessage",
}
OPTIONS = [
    {"title": "Confirmar", "payload": "/confirmar"},
    {"title": "Remarcar", "payload": "/remarcar"},
]


@pytest.mark.parametrize(
    ("typed", "payload"),
    [("1", "/confirmar"), (" 2. ", "/remarcar"), ("2)", "/remarcar"), ("remarcar", "/remarcar")],
)
def test_a_typed_number_or_title_selects_the_option_offered(typed, payload):
    assert typed_option(typed, OPTIONS) == payload


@pytest.mark.parametrize("typed", ["3", "0", "12 de março", "quero remarcar", ""])
def test_anything_else_typed_is_just_text(typed):
    assert typed_option(typed, OPTIONS) is None


def test_options_as_text_are_numbered_in_order():
    assert numbered_options("Sua consulta é amanhã.", OPTIONS) == (
        "Sua consulta é amanhã.\n\n1. Confirmar\n2. Remarcar\n\nResponda com o número da opção."
    )
    assert numbered_options("Sem opções", []) == "Sem opções"


def test_long_texts_are_split_at_paragraphs_then_words_within_the_limit():
    text = "Primeiro parágrafo.\n\n" + "palavra " * 30

    parts = split_text(text, 60)

    assert parts[0] == "Primeiro parágrafo."
    assert all(len(part) <= 60 for part in parts)
    assert " ".join(parts).split() == text.split()
    assert split_text("x" * 130, 60) == ["x" * 60, "x" * 60, "x" * 10]
    assert split_text("curto", 60) == ["curto"]


@pytest.mark.parametrize("channel", list(SENDER))
async def test_a_redelivery_even_of_two_copies_at_once_is_recorded_and_answered_once(
    serve, provider, smtp_server, channel
):
    served = await serve(CONNECTORS[channel])
    payload = text_message(channel, SENDER[channel])

    results = await asyncio.gather(served.deliver(payload), served.deliver(payload))
    again = await served.deliver(payload)
    await served.settle()

    assert [status for status, _ in [*results, again]] == [200, 200, 200]
    assert len(served.assistant.received) == 1
    assert replies_to(SENDER[channel], channel, provider, smtp_server) == ["eco: oi"]
    assert [m.direction for m in await served.messages()] == [Direction.INBOUND, Direction.OUTBOUND]


@pytest.mark.parametrize("channel", list(SENDER))
async def test_an_unsigned_request_is_refused_and_nothing_is_kept_or_answered(serve, channel):
    served = await serve(CONNECTORS[channel])
    body, headers = signed(channel, text_message(channel, SENDER[channel]))
    del headers[SIGNATURE_HEADER[channel]]

    status, text = await post(served.url, channel, body, headers)
    await served.settle()

    assert (status, json.loads(text)) == (403, {"error": "invalid signature"})
    assert await served.messages() == []
    assert served.assistant.received == []


@pytest.mark.parametrize("channel", list(SENDER))
async def test_a_signature_with_unexpected_characters_is_refused_not_a_crash(serve, channel):
    served = await serve(CONNECTORS[channel])
    body, headers = signed(channel, text_message(channel, SENDER[channel]))
    forged = {"X-Hub-Signature-256": "sha256=çãé", "Authorization": "Bearer çãé"}
    headers[SIGNATURE_HEADER[channel]] = forged.get(SIGNATURE_HEADER[channel], "çãé")

    status, _ = await post(served.url, channel, body, headers)

    assert status == 403


async def test_the_webhook_answers_at_once_while_the_bot_is_still_thinking(serve):
    whatsapp = await serve(WhatsAppChannel)
    whatsapp.assistant.delay = 3

    started = time.monotonic()
    status, _ = await whatsapp.deliver(text_message("whatsapp", "5511987650201"))
    elapsed = time.monotonic() - started

    assert status == 200
    assert elapsed < 1
    assert len(await whatsapp.messages()) == 1  # recorded before the acknowledgement
    assert whatsapp.assistant.received == []
    await whatsapp.settle()
    assert len(whatsapp.assistant.received) == 1


async def test_a_message_recorded_but_never_routed_is_answered_after_a_restart(
    serve, channel_ctx, provider
):
    inbound = Inbound(
        channel="whatsapp",
        external_user_id="5511987650202",
        provider_message_id="wamid.recorded-before-crash",
        text="oi",
        phone="+5511987650202",
        aliases={"wa_id": "5511987650202"},
    )
    async with channel_ctx.db.session() as session:
        await record_inbound(session, inbound)

    whatsapp = await serve(WhatsAppChannel)  # the server start replays it
    await whatsapp.settle()

    assert whatsapp.assistant.texts == ["oi"]
    await provider.wait_for(lambda r: r.recipient == "5511987650202")
    assert (await whatsapp.messages())[0].processed_at is not None


async def test_while_a_person_owns_the_conversation_nothing_reaches_the_bot(serve, provider):
    whatsapp = await serve(WhatsAppChannel)
    await whatsapp.deliver(text_message("whatsapp", "5511987650203", "oi"))
    await whatsapp.settle()
    async with whatsapp.ctx.db.session() as session:
        await session.execute(update(Conversation).values(owner=Owner.ATTENDANT))

    await whatsapp.deliver(text_message("whatsapp", "5511987650203", "/restart"))
    photo = load_json("whatsapp", "image")
    photo["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "5511987650203"
    photo["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = "5511987650203"
    await whatsapp.deliver(photo)
    await whatsapp.settle()

    assert whatsapp.assistant.texts == ["oi"]
    assert len(provider.sent_to("5511987650203")) == 1  # no "can't read files" either
    inbound = [m for m in await whatsapp.messages() if m.direction == Direction.INBOUND]
    assert all(m.processed_at is not None for m in inbound)
    assert whatsapp.ctx.bus.of_type("message")[-1]["message"]["attachments"][0]["type"] == "image"


async def test_leading_slashes_never_reach_the_bot_as_intents(serve):
    telegram = await serve(TelegramChannel)

    await telegram.deliver(load_json("telegram", "text"))  # "/start"
    await telegram.settle()

    assert telegram.assistant.texts == ["start"]


async def test_a_disabled_channel_refuses_its_webhook_and_writes_outbound_to_the_outbox(
    channel_ctx, tmp_path: Path
):
    settings = Settings.from_env({"INTERNAL_TOKEN": "t", "SESSION_SECRET": "s", "RASA_TOKEN": "r"})
    assert enabled_channels(settings) == {}
    senders = build_senders(settings, {}, widget_sockets=None, outbox=tmp_path)
    assert all(isinstance(senders[channel.name], OutboxSender) for channel in PROVIDERS)

    inbound = Inbound(
        channel="telegram", external_user_id="42", provider_message_id="42:1", text="oi"
    )
    async with channel_ctx.db.session() as session:
        recorded = await record_inbound(session, inbound)
    message = Message(text="Olá! Como posso ajudar?", author_kind="bot", buttons=OPTIONS)
    provider_id = await senders["telegram"].deliver(message, recorded.identity)

    assert provider_id.startswith("outbox-")
    [line] = (tmp_path / "telegram.jsonl").read_text().splitlines()
    assert json.loads(line) | {"at": None} == {
        "at": None,
        "message_id": None,
        "patient_id": None,
        "to": "42",
        "author_kind": "bot",
        "sealed": False,
        "text": "Olá! Como posso ajudar?",
        "buttons": OPTIONS,
    }


async def test_a_disabled_channels_webhook_answers_403(serve, channel_ctx):
    telegram = await serve(TelegramChannel)
    del telegram.inbox.channels["telegram"]  # as when its secrets are not set

    status, body = await deliver(telegram.url, "telegram", load_json("telegram", "text"))

    assert (status, json.loads(body)) == (403, {"error": "the telegram channel is not configured"})
    async with channel_ctx.db.session() as session:
        assert (await session.execute(select(Message))).first() is None


def test_rasa_mounts_only_the_platforms_connector_and_no_provider_protocol():
    credentials = (ROOT.parent.parent / "credentials.yml").read_text()

    mounted = re.findall(r"^([\w.]+):", credentials, re.M)

    assert mounted == ["bot.channels.platform.PlatformInput"]


# The variables issue 4 names; `.env.example` documents them and every other one the code reads.
ISSUE_VARIABLES = [
    "PUBLIC_BASE_URL",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "MESSENGER_VERIFY_TOKEN",
    "MESSENGER_APP_SECRET",
    "MESSENGER_PAGE_ACCESS_TOKEN",
    "INSTAGRAM_VERIFY_TOKEN",
    "INSTAGRAM_APP_SECRET",
    "INSTAGRAM_ACCESS_TOKEN",
    "META_GRAPH_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_WHATSAPP_FROM",
    "TWILIO_SMS_FROM",
    "TWILIO_API_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_SECRET_TOKEN",
    "TELEGRAM_API_URL",
    "SMTP_URL",
    "IMAP_URL",
    "EMAIL_FROM",
    "EMAIL_INBOUND_SECRET",
]


def test_env_example_documents_every_channel_variable():
    repository = ROOT.parent.parent
    example = (repository / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.M))
    code = "".join(path.read_text() for path in (repository / "channels").glob("*.py"))
    prefixes = "WHATSAPP|MESSENGER|INSTAGRAM|META|TWILIO|TELEGRAM|SMTP|IMAP|EMAIL"
    read_by_code = set(re.findall(rf'"((?:{prefixes})_[A-Z0-9_]+)"', code))

    assert set(ISSUE_VARIABLES) | read_by_code <= documented


async def test_a_database_failure_answers_503_for_a_retry_and_logs_no_message_text(
    serve, monkeypatch, caplog
):
    whatsapp = await serve(WhatsAppChannel)
    payload = text_message("whatsapp", "5511987650204", "meu CPF é 529.982.247-25")

    async def database_down(inbound):
        raise OperationalError("INSERT INTO messages", {"text": inbound.text}, Exception("locked"))

    with monkeypatch.context() as patch:
        patch.setattr(whatsapp.inbox, "accept", database_down)
        status, _ = await whatsapp.deliver(payload)
    assert status == 503
    assert "529.982.247-25" not in caplog.text

    assert (await whatsapp.deliver(payload))[0] == 200  # the provider's retry
    await whatsapp.settle()
    assert whatsapp.assistant.texts == ["meu CPF é 529.982.247-25"]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, {"error": {"message": "Too many requests", "code": 4}}),
        (400, {"error": {"message": "Rate limit hit", "code": 130429}}),
        (503, "Service Unavailable"),
    ],
)
async def test_a_throttled_or_unavailable_provider_is_retried_by_the_worker(
    serve, provider, status, body
):
    whatsapp = await serve(WhatsAppChannel)
    provider.respond("/messages", status, body)
    await whatsapp.deliver(text_message("whatsapp", "5511987650205"))
    await whatsapp.settle()
    reply = (await whatsapp.messages())[-1]
    assert (reply.delivery_status, reply.attempts) == (DeliveryStatus.PENDING, 1)
    assert reply.error.startswith(f"whatsapp: HTTP {status}")

    async with whatsapp.ctx.db.session() as session:
        stored = await session.get(Message, reply.id)
        stored.created_at -= timedelta(seconds=RETRY_DELAYS[0])
    assert await retry_due_deliveries(whatsapp.ctx) == 1

    reply = (await whatsapp.messages())[-1]
    assert (reply.delivery_status, reply.error) == (DeliveryStatus.SENT, None)
    assert len(provider.sent_to("5511987650205")) == 2


def recorded(channel: str, event: str) -> object:
    if channel == "twilio":
        return load_form(event)
    if channel == "email":
        return load_mail(event)
    return load_json(channel, event)


def provider_id(answer: dict) -> str:
    """The message id in a provider's answer to a send."""
    if "sid" in answer:
        return answer["sid"]  # Twilio
    if "messages" in answer:
        return answer["messages"][0]["id"]  # WhatsApp Cloud
    return answer["message_id"]  # Messenger, Instagram


async def outbound(served) -> list[Message]:
    return [m for m in await served.messages() if m.direction == Direction.OUTBOUND]


@pytest.mark.parametrize("channel", JSON_CHANNELS)
async def test_malformed_json_gets_a_clear_400_and_nothing_is_kept(serve, channel):
    served = await serve(CONNECTORS[channel])
    body = b'{"object": "page", "entry": [}'

    status, text = await post(served.url, channel, body, signature_headers(channel, body))

    assert (status, json.loads(text)) == (400, {"error": "body is not valid JSON"})
    assert await served.messages() == []


@pytest.mark.parametrize("channel", JSON_CHANNELS)
async def test_a_body_over_the_channels_limit_is_refused_before_anything_else(serve, channel):
    served = await serve(CONNECTORS[channel])
    body = b" " * (served.channel.max_body + 1)

    status, _ = await post(served.url, channel, body, signature_headers(channel, body))

    assert status == 413
    assert await served.messages() == []


async def _raw_post(url: str, head: str, first_bytes: bytes) -> bytes:
    """Send a request's head and only the first bytes of its body: the head of the answer,
    which must come without the rest of the body ever being sent."""
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode() + first_bytes)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    finally:
        writer.close()


@pytest.mark.parametrize("channel", JSON_CHANNELS)
async def test_a_body_announced_over_the_limit_is_refused_without_being_read(serve, channel):
    served = await serve(CONNECTORS[channel])
    announced = 100 * served.channel.max_body
    head = (
        f"POST {webhook_path(channel)} HTTP/1.1\r\nHost: clinica.example\r\n"
        f"Content-Type: application/json\r\nContent-Length: {announced}\r\n\r\n"
    )

    answer = await _raw_post(served.url, head, b'{"object": ')

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in answer  # rather than drain the rest to reuse the connection
    assert await served.messages() == []


async def test_a_chunked_body_is_cut_off_at_the_limit(serve):
    served = await serve(CONNECTORS["whatsapp"])
    chunk = b" " * 65536
    head = (
        f"POST {webhook_path('whatsapp')} HTTP/1.1\r\nHost: clinica.example\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    over = served.channel.max_body // len(chunk) + 2
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(over))

    answer = await _raw_post(served.url, head, body)  # no last chunk: the body never ends

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert await served.messages() == []


@pytest.mark.parametrize("channel", list(UNKNOWN_EVENT))
async def test_an_event_of_a_type_we_do_not_handle_is_acknowledged_and_changes_nothing(
    serve, provider, smtp_server, channel
):
    served = await serve(CONNECTORS[channel])

    status, _ = await served.deliver(recorded(channel, UNKNOWN_EVENT[channel]))
    await served.settle()

    assert status == 200
    assert await served.messages() == []
    assert served.assistant.received == []
    assert provider.sent() == [] and smtp_server.received == []


@pytest.mark.parametrize("channel", list(RECEIPTS))
async def test_receipts_move_a_reply_forward_only_whatever_their_order(serve, channel):
    served = await serve(CONNECTORS[channel])
    await served.deliver(text_message(channel, SENDER[channel]))
    await served.settle()
    [reply] = await outbound(served)

    for event in RECEIPTS[channel]:
        payload = receipt(channel, event, reply.provider_message_id, SENDER[channel])
        assert (await served.deliver(payload))[0] == 200
    await served.settle()

    [reply] = await outbound(served)
    assert reply.delivery_status == DeliveryStatus.READ
    assert reply.read_at is not None
    assert len(served.assistant.received) == 1  # receipts never reach the bot


@pytest.mark.parametrize("channel", list(EARLY_RECEIPT))
async def test_a_receipt_that_arrives_before_the_send_is_answered_is_not_lost(
    serve, provider, channel
):
    served = await serve(CONNECTORS[channel])
    event, expected = EARLY_RECEIPT[channel]

    async def report_at_once(request, answer) -> None:
        if request.recipient == SENDER[channel]:
            payload = receipt(channel, event, provider_id(answer), SENDER[channel])
            assert (await deliver(served.url, channel, payload))[0] == 200

    provider.before_answer(report_at_once)
    await served.deliver(text_message(channel, SENDER[channel]))
    await served.settle()

    [reply] = await outbound(served)
    assert reply.delivery_status == expected
    if expected == DeliveryStatus.FAILED:
        assert re.search(r"63016|131026", reply.error)
    pushed = served.ctx.bus.of_type("message")[-1]["message"]
    assert (pushed["id"], pushed["delivery_status"]) == (reply.id, str(expected))


async def test_a_receipt_no_send_ever_claims_is_forgotten_after_a_day(serve):
    twilio = await serve(CONNECTORS["twilio"])
    payload = receipt("twilio", "status_delivered", "SMnot-ours", SENDER["twilio"])
    assert (await twilio.deliver(payload))[0] == 200

    async def kept() -> list[str]:
        async with twilio.ctx.db.session() as session:
            query = select(OutboundPart.provider_message_id)
            return (await session.execute(query)).scalars().all()

    await retry_due_deliveries(twilio.ctx)
    assert await kept() == ["SMnot-ours"]  # its send may still be waiting for an answer
    async with twilio.ctx.db.session() as session:
        await session.execute(
            update(OutboundPart).values(created_at=utcnow() - UNCLAIMED_STATUS_TTL)
        )
    await retry_due_deliveries(twilio.ctx)
    assert await kept() == []


@pytest.mark.parametrize("channel", list(SEND_PATH))
async def test_a_retry_after_a_failed_part_sends_only_the_parts_not_yet_taken(
    serve, provider, channel
):
    served = await serve(CONNECTORS[channel])
    provider.respond(SEND_PATH[channel], 503, "Service Unavailable", after=1)
    await served.deliver(text_message(channel, SENDER[channel], "palavra " * 600))
    await served.settle()
    [reply] = await outbound(served)
    assert (reply.delivery_status, reply.parts_sent) == (DeliveryStatus.PENDING, 1)

    async with served.ctx.db.session() as session:
        (await session.get(Message, reply.id)).created_at -= timedelta(seconds=RETRY_DELAYS[0])
    assert await retry_due_deliveries(served.ctx) == 1

    texts = [request.text for request in provider.sent_to(SENDER[channel])]
    taken = [texts[0], *texts[2:]]  # the second request was refused
    assert texts[1] == texts[2]
    assert " ".join(taken).split() == ("eco: " + "palavra " * 600).split()
    [reply] = await outbound(served)
    assert (reply.delivery_status, reply.parts_sent) == (DeliveryStatus.SENT, len(taken))


@pytest.mark.parametrize("channel", ["messenger", "instagram"])
async def test_after_24h_only_a_person_may_reply_with_the_human_agent_tag(serve, provider, channel):
    served = await serve(CONNECTORS[channel])
    await served.deliver(text_message(channel, SENDER[channel]))
    await served.settle()
    conversation_id = (await served.messages())[0].conversation_id
    await served.age_window(hours=30)

    by_person = await send(
        served.ctx, conversation_id, text="Oi, sou a Ana", author_kind=AuthorKind.ATTENDANT
    )
    by_bot = await send(served.ctx, conversation_id, text="Lembrete", author_kind=AuthorKind.BOT)

    [tagged] = await provider.wait_for(lambda r: r.json.get("tag") == "HUMAN_AGENT")
    assert tagged.json["messaging_type"] == "MESSAGE_TAG"
    assert tagged.text == "Oi, sou a Ana"
    stored = {m.id: m for m in await served.messages()}
    assert stored[by_person.id].delivery_status == DeliveryStatus.SENT
    assert stored[by_bot.id].delivery_status == DeliveryStatus.FAILED
    assert "messaging window" in stored[by_bot.id].error


async def test_a_message_whose_routing_failed_is_routed_by_a_later_sweep_without_a_restart(
    serve, provider, monkeypatch
):
    monkeypatch.setattr(Inbox, "replay_every", 0.1)
    whatsapp = await serve(WhatsAppChannel)
    whatsapp.assistant.down = 1

    await whatsapp.deliver(text_message("whatsapp", "5511987650206"))
    await whatsapp.settle()
    await asyncio.sleep(0.5)  # several sweeps: too recent, its own process may be routing it
    [message] = await whatsapp.messages()
    assert (message.processed_at, whatsapp.assistant.texts) == (None, [])

    async with whatsapp.ctx.db.session() as session:
        (await session.get(Message, message.id)).recorded_at -= Inbox.replay_after
    deadline = time.monotonic() + 5
    while (await whatsapp.messages())[0].processed_at is None:
        assert time.monotonic() < deadline, "the sweep never routed the message"
        await asyncio.sleep(0.1)

    assert whatsapp.assistant.texts == ["oi"]
    # Marked processed with its reply recorded, then delivered.
    [reply] = await provider.wait_for(lambda r: r.recipient == "5511987650206")
    assert reply.text == "eco: oi"


async def test_a_failure_after_the_provider_took_the_reply_never_answers_the_patient_again(
    serve, provider, monkeypatch
):
    whatsapp = await serve(WhatsAppChannel)

    async def recording_fails(*_args, **_kwargs):
        raise OperationalError("UPDATE messages", {}, Exception("database is locked"))

    with monkeypatch.context() as patch:
        patch.setattr(delivery, "_record_delivery", recording_fails)
        await whatsapp.deliver(text_message("whatsapp", "5511987650207", "oi"))
        await whatsapp.settle()
    await provider.wait_for(lambda r: r.recipient == "5511987650207")

    # Every later sweep, however late, finds nothing to answer, and the delivery whose
    # outcome was never recorded is not sent again by the retries either.
    assert await whatsapp.inbox.replay_unprocessed(utcnow() + timedelta(hours=1)) == 0
    await whatsapp.settle()
    async with whatsapp.ctx.db.session() as session:
        await session.execute(
            update(Message).values(created_at=utcnow() - timedelta(seconds=sum(RETRY_DELAYS)))
        )
    assert await retry_due_deliveries(whatsapp.ctx) == 0
    assert whatsapp.assistant.texts == ["oi"]
    assert [r.text for r in provider.sent_to("5511987650207")] == ["eco: oi"]


async def test_a_replayed_message_is_flagged_so_the_assistant_answers_it_from_its_tracker(
    serve, channel_ctx
):
    inbound = Inbound(
        channel="whatsapp",
        external_user_id="5511987650208",
        provider_message_id="wamid.maybe-seen-by-the-assistant",
        text="oi",
    )
    async with channel_ctx.db.session() as session:
        await record_inbound(session, inbound)

    whatsapp = await serve(WhatsAppChannel)  # the server start replays it
    await whatsapp.settle()
    await whatsapp.deliver(text_message("whatsapp", "5511987650208", "tudo bem?"))
    await whatsapp.settle()

    assert [(turn.text, turn.replay) for turn in whatsapp.assistant.received] == [
        ("oi", True),
        ("tudo bem?", False),
    ]


async def test_a_message_whose_routing_failed_is_answered_before_the_patients_next_one(
    serve, provider
):
    whatsapp = await serve(WhatsAppChannel)
    whatsapp.assistant.down = 1
    await whatsapp.deliver(text_message("whatsapp", "5511987650210", "oi"))
    await whatsapp.settle()
    await whatsapp.deliver(text_message("whatsapp", "5511987650210", "tudo bem?"))
    await whatsapp.settle()

    # The assistant was down for the first: the second turn takes it first, as a replay.
    assert [(turn.text, turn.replay) for turn in whatsapp.assistant.received] == [
        ("oi", True),
        ("tudo bem?", False),
    ]
    replies = await provider.wait_for(lambda r: r.recipient == "5511987650210", count=2)
    assert [r.text for r in replies] == ["eco: oi", "eco: tudo bem?"]


async def test_two_processes_routing_the_same_message_answer_it_once(serve, provider):
    whatsapp = await serve(WhatsAppChannel)
    whatsapp.assistant.down = 1
    await whatsapp.deliver(text_message("whatsapp", "5511987650209", "oi"))
    await whatsapp.settle()
    [message] = await whatsapp.messages()
    inbox = whatsapp.inbox
    other_process = Inbox(inbox.ctx, inbox.assistant, inbox.channels, inbox.join_open_episode)

    await asyncio.gather(
        whatsapp.inbox.route(message.id, replay=True), other_process.route(message.id, replay=True)
    )

    await provider.wait_for(lambda r: r.recipient == "5511987650209")
    await asyncio.sleep(0.2)
    assert [r.text for r in provider.sent_to("5511987650209")] == ["eco: oi"]
    assert [m.direction for m in await whatsapp.messages()] == [
        Direction.INBOUND,
        Direction.OUTBOUND,
    ]
