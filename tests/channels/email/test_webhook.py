"""The e-mail channel: the inbound webhook and IMAP polling in, a real SMTP server out."""

import base64

import aiohttp
import pytest

from channels.email import EmailChannel
from messaging.outbound import send
from models import AuthorKind, DeliveryStatus, Direction
from tests.channels.webhooks import SECRETS, load_mail, post, signed, text_message


@pytest.fixture
async def email(serve):
    return await serve(EmailChannel)


async def test_a_mail_is_answered_once_by_smtp_in_the_patients_thread(email, smtp_server):
    raw = text_message("email", "ana.souza@example.com", "Qual o horário?", "first-ana@mail.test")

    assert (await email.deliver(raw))[0] == 200
    await email.settle()

    [reply] = await smtp_server.wait_for("ana.souza@example.com")
    assert reply["From"] == SECRETS["EMAIL_FROM"]
    assert reply["Subject"] == "Re: Agendar consulta"
    assert reply["In-Reply-To"] == "<first-ana@mail.test>"
    assert reply["References"] == "<first-ana@mail.test>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply.get_content().strip() == "eco: Qual o horário?"
    stored = (await email.messages())[-1]
    assert f"<{stored.provider_message_id}>" == reply["Message-ID"]
    assert stored.delivery_status == DeliveryStatus.SENT


@pytest.mark.parametrize("how", ["basic", "sendgrid_form"])
async def test_the_inbound_secret_may_come_as_basic_auth_and_the_mail_as_a_form(
    email, smtp_server, how
):
    raw = text_message("email", f"{how}@example.com")
    credentials = base64.b64encode(f"inbound:{SECRETS['EMAIL_INBOUND_SECRET']}".encode())
    headers = {"Authorization": f"Basic {credentials.decode()}"}
    async with aiohttp.ClientSession() as http:
        if how == "basic":
            data: object = raw
        else:
            data = aiohttp.FormData({"to": "contato@clinica.test"})
            data.add_field("email", raw.decode(), content_type="text/plain")  # multipart
        async with http.post(
            f"{email.url}/webhooks/email/webhook", data=data, headers=headers
        ) as resp:
            assert resp.status == 200
    await email.settle()

    await smtp_server.wait_for(f"{how}@example.com")


@pytest.mark.parametrize(
    "authorization", ["Bearer wrong", "Basic " + base64.b64encode(b"x:wrong").decode(), "Token x"]
)
async def test_a_wrong_secret_is_refused(email, authorization):
    body, headers = signed("email", text_message("email", "intruso@example.com"))
    headers["Authorization"] = authorization

    assert (await post(email.url, "email", body, headers))[0] == 403
    assert await email.messages() == []


async def test_an_empty_body_gets_a_clear_400(email):
    assert (await email.deliver(b"  "))[0] == 400


async def test_an_auto_reply_is_kept_and_never_answered(email, smtp_server):
    assert (await email.deliver(load_mail("auto_reply")))[0] == 200
    await email.settle()

    [stored] = await email.messages()
    assert stored.processed_at is not None
    assert email.assistant.received == []
    assert smtp_server.sent_to("maria.silva@gmail.com") == []


async def test_options_are_numbered_and_a_reply_with_the_number_picks_one(email, smtp_server):
    email.assistant.buttons = [
        {"title": "Agendar consulta", "payload": "/agendar"},
        {"title": "Falar com a equipe", "payload": "/falar_com_atendente"},
    ]
    await email.deliver(load_mail("plain"))
    await email.settle()
    [offer] = await smtp_server.wait_for("maria.silva@gmail.com")
    assert "1. Agendar consulta\n2. Falar com a equipe" in offer.get_content().replace("\r\n", "\n")

    await email.deliver(load_mail("reply_quoted"))  # "2", above the quoted history
    await email.settle()

    assert email.assistant.texts[-1] == "/falar_com_atendente"


async def test_a_bounce_fails_the_mail_that_bounced(email):
    await email.deliver(text_message("email", "naoexiste@gmail.com"))
    await email.settle()
    # The server refused the address: the reply failed at once and for good.
    reply = (await email.messages())[-1]
    assert reply.delivery_status == DeliveryStatus.FAILED
    assert reply.error.startswith("email: recipient refused")

    await email.deliver(text_message("email", "outro@example.com"))
    await email.settle()
    sent = (await email.messages())[-1]
    bounce = load_mail("bounce").replace(
        b"177512.9.omni@clinica.test", sent.provider_message_id.encode()
    )
    await email.deliver(bounce)

    sent = (
        (await email.messages())[-1]
        if False
        else next(m for m in await email.messages() if m.id == sent.id)
    )
    assert sent.delivery_status == DeliveryStatus.FAILED
    assert "550-5.1.1" in sent.error


async def test_a_full_mailbox_is_retried_later(email):
    await email.deliver(text_message("email", "caixacheia@example.com"))
    await email.settle()

    reply = next(m for m in await email.messages() if m.direction == Direction.OUTBOUND)
    assert reply.delivery_status == DeliveryStatus.PENDING
    assert reply.attempts == 1
    assert reply.error.startswith("email: recipient refused")


async def test_an_unreachable_smtp_server_is_retried_later(email):
    sender = email.ctx.senders["email"]
    sender.config = type(sender.config)(**{**vars(sender.config), "smtp_url": "smtp://127.0.0.1:9"})
    await email.deliver(text_message("email", "semservidor@example.com"))
    await email.settle()

    reply = next(m for m in await email.messages() if m.direction == Direction.OUTBOUND)
    assert reply.delivery_status == DeliveryStatus.PENDING
    assert reply.error == "email: ConnectionRefusedError"


async def test_polling_imap_records_answers_and_marks_seen_each_mail_once(
    email, imap_server, smtp_server
):
    imap_server.deliver(text_message("email", "imap.paciente@example.com", "Vocês atendem Unimed?"))
    imap_server.deliver(load_mail("auto_reply"))

    def record(events):
        return email.inbox.handle("email", events)

    assert await email.channel.poll(record) == 2
    await email.settle()
    assert await email.channel.poll(record) == 0

    assert [m.seen for m in imap_server.mails] == [True, True]
    assert email.assistant.texts == ["Vocês atendem Unimed?"]
    await smtp_server.wait_for("imap.paciente@example.com")


async def test_an_attendants_mail_is_not_marked_automatic(email, smtp_server):
    await email.deliver(text_message("email", "humano@example.com"))
    await email.settle()
    conversation_id = (await email.messages())[0].conversation_id

    await send(email.ctx, conversation_id, text="Oi, sou a Ana.", author_kind=AuthorKind.ATTENDANT)

    mails = await smtp_server.wait_for("humano@example.com", count=2)
    assert mails[-1]["Auto-Submitted"] is None
    assert mails[-1]["References"] == mails[0]["References"]
