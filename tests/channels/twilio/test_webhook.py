"""The Twilio channel (WhatsApp and SMS) over real HTTP, sending to the fake Twilio API."""

import base64
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from channels.twilio import TWIML_EMPTY, TwilioChannel, TwilioConfig
from core.context import DeliveryFailed, Reach
from messaging.outbound import send
from models import AuthorKind, ChannelIdentity, DeliveryStatus, Direction, Message
from tests.channels.webhooks import SECRETS, post, signature_headers, text_message

OPTIONS = [
    {"title": "Confirmar", "payload": "/confirmar_consulta"},
    {"title": "Remarcar", "payload": "/remarcar_consulta"},
]


@pytest.fixture
async def twilio(serve):
    return await serve(TwilioChannel)


async def test_an_sms_is_answered_once_by_sms_to_the_sender(twilio, provider):
    status, body = await twilio.deliver(text_message("twilio", "+5511987650101", "olá"))
    await twilio.settle()

    assert (status, body) == (200, TWIML_EMPTY)
    [reply] = await provider.wait_for(lambda r: r.recipient == "+5511987650101")
    assert (
        reply.path == f"/twilio/2010-04-01/Accounts/{SECRETS['TWILIO_ACCOUNT_SID']}/Messages.json"
    )
    assert reply.form["From"] == SECRETS["TWILIO_SMS_FROM"]
    assert reply.form["Body"] == "eco: olá"
    assert reply.form["StatusCallback"] == "https://clinica.example/webhooks/twilio/webhook"
    credentials = f"{SECRETS['TWILIO_ACCOUNT_SID']}:{SECRETS['TWILIO_AUTH_TOKEN']}"
    assert (
        reply.headers["Authorization"] == "Basic " + base64.b64encode(credentials.encode()).decode()
    )
    outbound = (await twilio.messages())[-1]
    assert outbound.provider_message_id.startswith("SM")


async def test_a_whatsapp_message_is_answered_on_whatsapp(twilio, provider):
    await twilio.deliver(text_message("twilio", "whatsapp:+5511987650102"))
    await twilio.settle()

    [reply] = await provider.wait_for(lambda r: r.recipient == "whatsapp:+5511987650102")
    assert reply.form["From"] == SECRETS["TWILIO_WHATSAPP_FROM"]


async def test_the_signature_covers_the_public_url_not_the_address_the_request_came_to(twilio):
    form = text_message("twilio", "+5511987650103")
    body = urlencode(form).encode()
    local = signature_headers("twilio", body, form=form, public_base_url=twilio.url)

    assert (await post(twilio.url, "twilio", body, local))[0] == 403
    assert (await twilio.deliver(form))[0] == 200


async def test_a_request_changed_after_signing_is_refused(twilio):
    form = text_message("twilio", "+5511987650104", "oi")
    headers = signature_headers("twilio", b"", form=form)
    tampered = urlencode({**form, "Body": "/restart"}).encode()

    assert (await post(twilio.url, "twilio", tampered, headers))[0] == 403
    assert await twilio.messages() == []


async def test_parameters_twilio_adds_later_are_accepted(twilio):
    form = {**text_message("twilio", "+5511987650106"), "SomeFutureField": "x", "Another": ""}

    assert (await twilio.deliver(form))[0] == 200


async def test_a_form_without_a_message_sid_gets_a_clear_400(twilio):
    form = {"From": "+5511987650107", "Body": "oi"}

    status, text = await twilio.deliver(form)

    assert status == 400
    assert "MessageSid" in text


async def test_an_oversized_body_is_refused(twilio):
    form = text_message("twilio", "+5511987650108", "x" * 70_000)

    assert (await twilio.deliver(form))[0] == 413


async def test_options_go_out_numbered_and_a_typed_number_picks_the_option(twilio, provider):
    twilio.assistant.buttons = OPTIONS
    await twilio.deliver(text_message("twilio", "+5511987650110", "quero remarcar"))
    await twilio.settle()

    [offer] = await provider.wait_for(lambda r: r.recipient == "+5511987650110")
    assert offer.form["Body"] == (
        "eco: quero remarcar\n\n1. Confirmar\n2. Remarcar\n\nResponda com o número da opção."
    )
    await twilio.deliver(text_message("twilio", "+5511987650110", " 2 "))
    await twilio.deliver(text_message("twilio", "+5511987650110", "confirmar"))
    await twilio.settle()
    assert twilio.assistant.texts == ["quero remarcar", "/remarcar_consulta", "/confirmar_consulta"]


async def test_a_number_with_no_such_option_stays_text(twilio):
    twilio.assistant.buttons = OPTIONS
    await twilio.deliver(text_message("twilio", "+5511987650111", "oi"))
    await twilio.settle()

    await twilio.deliver(text_message("twilio", "+5511987650111", "7"))
    await twilio.settle()

    assert twilio.assistant.texts == ["oi", "7"]


async def test_a_long_reply_is_split_within_the_sms_limit(twilio, provider):
    await twilio.deliver(text_message("twilio", "+5511987650112", "palavra " * 300))
    await twilio.settle()

    parts = await provider.wait_for(lambda r: r.recipient == "+5511987650112", count=2)
    assert all(len(p.form["Body"]) <= 1600 for p in parts)
    assert " ".join(p.form["Body"] for p in parts).split() == ("eco: " + "palavra " * 300).split()


async def test_outside_the_whatsapp_window_only_a_content_template_goes_out(twilio, provider):
    await twilio.deliver(text_message("twilio", "whatsapp:+5511987650114"))
    await twilio.settle()
    conversation_id = (await twilio.messages())[0].conversation_id
    await twilio.age_window(hours=48)

    failed = await send(twilio.ctx, conversation_id, text="Oi", author_kind=AuthorKind.ATTENDANT)
    async with twilio.ctx.db.session() as session:
        failed = await session.get(Message, failed.id)
        identity = (await session.execute(select(ChannelIdentity))).scalars().one()
    assert failed.delivery_status == DeliveryStatus.FAILED
    assert "ContentSid" in failed.error

    failed.template = {"name": "HXb5b62575e6e4ff6129ad7c8efe1f983e", "parameters": ["Maria", "14h"]}
    await twilio.ctx.senders["twilio"].deliver(failed, identity, Reach.TEMPLATE)
    [template] = provider.sent(lambda r: "ContentSid" in r.form)
    assert template.form["ContentSid"] == "HXb5b62575e6e4ff6129ad7c8efe1f983e"
    assert template.form["ContentVariables"] == '{"1": "Maria", "2": "14h"}'
    assert "Body" not in template.form


def reminders_content_only() -> TwilioConfig:
    """A Twilio set-up with the reminders' Content template and no other."""
    return TwilioConfig(
        account_sid=SECRETS["TWILIO_ACCOUNT_SID"],
        auth_token=SECRETS["TWILIO_AUTH_TOKEN"],
        whatsapp_from=SECRETS["TWILIO_WHATSAPP_FROM"],
        sms_from="",
        api_url="",
        content_sid="HXreminder",
        public_base_url="",
    )


def test_a_one_time_code_goes_only_in_its_own_content_template_never_the_reminders():
    config = reminders_content_only()
    code = Message(
        text="Seu código é 123456.",
        template={"name": "codigo_verificacao", "parameters": ["123456"], "copy_code": "123456"},
    )

    with pytest.raises(DeliveryFailed, match="TWILIO_CODE_CONTENT_SID"):
        TwilioChannel(config).template_fields(code)
    fields = TwilioChannel(replace(config, code_content_sid="HXcode")).template_fields(code)
    assert fields == {"content_sid": "HXcode", "content_variables": '{"1": "123456"}'}


def test_a_change_notice_never_goes_in_the_reminders_content_template():
    config = reminders_content_only()
    notice = Message(
        text="Sua consulta foi cancelada.",
        template={
            "name": "consulta_cancelada",
            "purpose": "appointment_cancelled",
            "parameters": ["Maria"],
        },
    )

    with pytest.raises(DeliveryFailed, match="appointment_cancelled"):
        TwilioChannel(config).template_fields(notice)
    notice.template = {**notice.template, "content_sid": "HXcancelled"}
    fields = TwilioChannel(config).template_fields(notice)
    assert fields == {"content_sid": "HXcancelled", "content_variables": '{"1": "Maria"}'}


async def test_a_refused_send_is_failed_with_twilios_reason(twilio, provider):
    provider.respond(
        "Messages.json",
        400,
        {"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400},
    )
    await twilio.deliver(text_message("twilio", "+5511987650115"))
    await twilio.settle()

    reply = next(m for m in await twilio.messages() if m.direction == Direction.OUTBOUND)
    assert reply.delivery_status == DeliveryStatus.FAILED
    assert (
        reply.error
        == "twilio: HTTP 400, Twilio error 21211: The 'To' number is not a valid phone number."
    )
