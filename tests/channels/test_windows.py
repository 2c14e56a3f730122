"""Messaging windows as the senders apply them (`messaging/windows.py`), and reminders
sent as the clinic's approved template from the registry, else the channel's configured
one."""

from datetime import timedelta

import pytest

from channels.twilio import TwilioChannel
from channels.whatsapp import WhatsAppChannel
from core.context import Reach
from messaging.outbound import send
from messaging.windows import window
from models import (
    AuthorKind,
    ChannelIdentity,
    DeliveryStatus,
    Message,
    MessageTemplate,
    TemplateKind,
    TemplatePurpose,
    utcnow,
)
from tests.channels.webhooks import text_message

REMINDER = {
    "purpose": "reminder",
    "parameters": ["Maria", "Clínica", "10/03/2026", "14:00", "Dr. Paulo"],
}


@pytest.mark.parametrize(
    ("channel", "external_id", "hours", "author", "reach", "closes_after"),
    [
        ("whatsapp", "5511987650301", 23.9, AuthorKind.ATTENDANT, Reach.FREE, 24),
        ("whatsapp", "5511987650301", 24.1, AuthorKind.ATTENDANT, Reach.TEMPLATE, None),
        ("twilio", "whatsapp:+5511987650302", 30, AuthorKind.BOT, Reach.TEMPLATE, None),
        ("twilio", "+5511987650303", 24 * 30, AuthorKind.BOT, Reach.FREE, None),
        ("messenger", "9000000000000301", 30, AuthorKind.BOT, Reach.TEMPLATE, None),
        ("messenger", "9000000000000301", 10, AuthorKind.ATTENDANT, Reach.FREE, 24 * 7),
        ("instagram", "9000000000000302", 24 * 3, AuthorKind.ATTENDANT, Reach.HUMAN_AGENT, 24 * 7),
        ("instagram", "9000000000000302", 24 * 7 + 1, AuthorKind.ATTENDANT, Reach.TEMPLATE, None),
        ("telegram", "123", 24 * 30, AuthorKind.ATTENDANT, Reach.FREE, None),
    ],
)
def test_each_channels_window(enabled, channel, external_id, hours, author, reach, closes_after):
    now = utcnow()
    last = now - timedelta(hours=hours)
    identity = ChannelIdentity(channel=channel, external_id=external_id, last_inbound_at=last)

    decided = window(enabled, identity, author, now=now)

    assert decided.reach == reach
    expected = None if closes_after is None else last + timedelta(hours=closes_after)
    assert decided.closes_at == expected


async def _reminded(served, person: str) -> Message:
    await served.deliver(text_message(served.channel_name, person))
    await served.settle()
    conversation_id = (await served.messages())[0].conversation_id
    await served.age_window(hours=30)
    message = await send(
        served.ctx,
        conversation_id,
        text="Lembrete da sua consulta",
        author_kind=AuthorKind.BOT,
        template=REMINDER,
    )
    return {m.id: m for m in await served.messages()}[message.id]


async def _register(served, **fields) -> None:
    async with served.ctx.db.session() as session:
        session.add(
            MessageTemplate(
                purpose=TemplatePurpose.REMINDER,
                body="Olá, {{1}}! {{2}} {{3}} {{4}} {{5}}",
                variables=[{"description": d} for d in "abcde"],
                **fields,
            )
        )


async def test_a_whatsapp_reminder_uses_the_registrys_template_else_the_configured_one(
    serve, provider
):
    whatsapp = await serve(WhatsAppChannel)
    person = "5511987650310"
    await _reminded(whatsapp, person)
    await _register(whatsapp, kind=TemplateKind.WHATSAPP, name="lembrete_v2", language="pt_BR")
    await _reminded(whatsapp, person)

    sent = provider.sent(lambda r: r.recipient == person and r.json.get("type") == "template")
    assert [r.json["template"]["name"] for r in sent] == ["lembrete_consulta", "lembrete_v2"]
    assert [p["text"] for p in sent[1].json["template"]["components"][0]["parameters"]] == (
        REMINDER["parameters"]
    )


async def test_a_twilio_reminder_goes_as_the_registrys_content_template(serve, provider):
    twilio = await serve(TwilioChannel)
    person = "whatsapp:+5511987650311"
    failed = await _reminded(twilio, person)  # no TWILIO_CONTENT_SID configured, none registered
    assert failed.delivery_status == DeliveryStatus.FAILED and "ContentSid" in failed.error
    sid = "HX" + "0123456789abcdef" * 2
    await _register(twilio, kind=TemplateKind.TWILIO, name="Lembrete", content_sid=sid)

    sent = await _reminded(twilio, person)

    assert sent.delivery_status == DeliveryStatus.SENT
    [request] = provider.sent(lambda r: r.recipient == person and "ContentSid" in r.form)
    assert request.form["ContentSid"] == sid
    assert request.form["ContentVariables"].startswith('{"1": "Maria", "2": "Cl')
