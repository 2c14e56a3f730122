"""Every channel against the running clinic (Rasa, action server, web app, worker, started from
the Procfile) with its provider API pointed at the local fake servers: a signed provider
payload gets exactly one reply from the real bot, to the right person; a redelivery gets
none; a bad signature gets 403; and the patient's one history shows every turn."""

import asyncio
import itertools
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from models import ChannelIdentity, Direction, Message, User, utcnow
from models.db import Database
from scheduling.agenda import find_slots
from scheduling.appointments import book
from tests.channels.webhooks import (
    SIGNATURE_HEADER,
    deliver,
    post,
    replies_to,
    signed,
    text_message,
)
from tests.factories import clinic_rules, valid_cpf

pytestmark = pytest.mark.integration

GREETING = "assistente virtual"
_senders = itertools.count(1)

# Each channel's sender ids: a new person per test.
SENDERS = {
    "whatsapp": lambda n: f"55119876{n:05d}",
    "twilio": lambda n: f"whatsapp:+55119875{n:05d}",
    "messenger": lambda n: f"91000000{n:08d}",
    "instagram": lambda n: f"71000000{n:08d}",
    "telegram": lambda n: f"{4_000_000 + n}",
    "email": lambda n: f"paciente{n}@example.com",
}


async def _history(clinic, channel: str, external_id: str) -> list[Message]:
    """Every turn of the patient behind this channel identity, on any channel."""
    db = Database(clinic.settings.database_url)
    try:
        async with db.session() as session:
            patient_id = (
                await session.execute(
                    select(ChannelIdentity.patient_id).where(
                        ChannelIdentity.channel == channel,
                        ChannelIdentity.external_id == external_id,
                    )
                )
            ).scalar_one()
            query = select(Message).where(Message.patient_id == patient_id).order_by(Message.id)
            return (await session.execute(query)).scalars().all()
    finally:
        await db.dispose()


async def _wait_replies(channel, person, provider, smtp_server, count=1, timeout=30) -> list[str]:
    for _ in range(int(timeout * 10)):
        replies = replies_to(person, channel, provider, smtp_server)
        if len(replies) >= count:
            return replies
        await asyncio.sleep(0.1)
    raise AssertionError(f"{channel}: no reply to {person}")


@pytest.mark.parametrize("channel", list(SENDERS))
async def test_a_signed_message_gets_one_reply_from_the_bot_and_lands_in_the_history(
    clinic, provider, smtp_server, channel
):
    person = SENDERS[channel](next(_senders))
    payload = text_message(channel, person, "oi, boa tarde")
    public = clinic.settings.public_base_url

    status, _ = await deliver(clinic.settings.web_url, channel, payload, public_base_url=public)
    assert status == 200
    [reply] = await _wait_replies(channel, person, provider, smtp_server)
    assert GREETING in reply

    # The provider retries the same delivery: acknowledged, never answered again.
    status, _ = await deliver(clinic.settings.web_url, channel, payload, public_base_url=public)
    assert status == 200
    await asyncio.sleep(2)
    assert len(replies_to(person, channel, provider, smtp_server)) == 1

    history = await _history(clinic, channel, person)
    assert [(m.direction, m.author_kind) for m in history] == [
        (Direction.INBOUND, "patient"),
        (Direction.OUTBOUND, "bot"),
    ]
    assert history[0].text == "oi, boa tarde"
    assert GREETING in history[1].text
    assert history[1].delivery_status in ("sent", "delivered", "read")


@pytest.mark.parametrize("channel", list(SENDERS))
async def test_a_bad_signature_is_refused_with_403_and_nothing_is_answered(
    clinic, provider, smtp_server, channel
):
    person = SENDERS[channel](next(_senders))
    body, headers = signed(channel, text_message(channel, person))
    name = SIGNATURE_HEADER[channel]
    headers[name] = "sha256=" + "0" * 64 if name == "X-Hub-Signature-256" else "forged"

    status, _ = await post(clinic.settings.web_url, channel, body, headers)

    assert status == 403
    await asyncio.sleep(1)
    assert replies_to(person, channel, provider, smtp_server) == []


async def test_one_phone_on_whatsapp_sms_and_telegram_is_one_patient_with_one_history(
    clinic, provider, smtp_server
):
    n = next(_senders)
    phone = f"+55119874{n:05d}"
    bot, public = clinic.settings.web_url, clinic.settings.public_base_url
    chat = str(5_000_000 + n)
    await deliver(bot, "whatsapp", text_message("whatsapp", phone[1:], "oi"))
    await _wait_replies("whatsapp", phone[1:], provider, smtp_server)
    await deliver(bot, "twilio", text_message("twilio", phone, "oi"), public_base_url=public)
    await _wait_replies("twilio", phone, provider, smtp_server)
    await deliver(bot, "telegram", text_message("telegram", chat, "oi"))
    await _wait_replies("telegram", chat, provider, smtp_server)
    contact = text_message("telegram", chat, "")
    del contact["message"]["text"]
    contact["message"]["contact"] = {
        "phone_number": phone,
        "first_name": "Test",
        "user_id": int(chat),
    }
    await deliver(bot, "telegram", contact)
    await _wait_replies("telegram", chat, provider, smtp_server, count=2)

    history = await _history(clinic, "whatsapp", phone[1:])
    assert [(m.channel, m.direction) for m in history] == [
        ("whatsapp", "in"),
        ("whatsapp", "out"),
        ("twilio", "in"),
        ("twilio", "out"),
        ("telegram", "in"),
        ("telegram", "out"),
        ("telegram", "in"),
        ("telegram", "out"),
    ]


async def test_a_mail_fetched_from_the_imap_inbox_is_answered_by_smtp(
    clinic, imap_server, smtp_server, provider
):
    person = f"imap{next(_senders)}@example.com"
    imap_server.deliver(text_message("email", person, "oi"))

    [reply] = await _wait_replies("email", person, provider, smtp_server)

    assert GREETING in reply
    assert imap_server.mails[-1].seen


async def _turn(clinic, provider, psid: str, text: str, expect: str, payload=None) -> list[str]:
    """A Messenger message (a typed text, or a tapped quick reply), and the replies up to
    the one containing `expect`."""
    before = len(provider.sent_to(psid))
    message = text_message("messenger", psid, text)
    if payload:
        message["entry"][0]["messaging"][0]["message"]["quick_reply"] = {"payload": payload}
    await deliver(clinic.settings.web_url, "messenger", message)
    for _ in range(450):
        replies = [r.text for r in provider.sent_to(psid)[before:]]
        if any(expect in reply for reply in replies):
            await asyncio.sleep(0.5)  # the rest of the turn's replies
            return [r.text for r in provider.sent_to(psid)[before:]]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no reply with {expect!r}; got {replies}")


async def test_a_messenger_patient_proves_the_cpf_of_a_whatsapp_patient_with_the_code_sent_there(
    clinic, provider, smtp_server
):
    n = next(_senders)
    wa_id, psid, cpf = f"55119873{n:05d}", f"92000000{n:08d}", valid_cpf(9000 + n)
    await deliver(clinic.settings.web_url, "whatsapp", text_message("whatsapp", wa_id, "oi"))
    await _wait_replies("whatsapp", wa_id, provider, smtp_server)
    db = Database(clinic.settings.database_url)
    try:
        async with db.session() as session:
            query = select(ChannelIdentity.patient_id).where(ChannelIdentity.external_id == wa_id)
            known = await session.get(
                User,
                (await session.execute(query)).scalar_one(),
                options=[selectinload(User.patient_profile)],
            )
            known.name, known.cpf = "Maria Conhecida", cpf
            known.patient_profile.lgpd_consent_at = utcnow()
            [slot] = await find_slots(session, now=utcnow(), limit=1)
        await book(
            db,
            clinic_rules(),
            patient_id=known.id,
            doctor_id=slot.doctor_id,
            starts_at=slot.starts_at,
            channel="whatsapp",
            self_service=False,
        )

        await _turn(clinic, provider, psid, "quero ver minhas consultas", "LGPD")
        await _turn(clinic, provider, psid, "sim", "nome completo")
        await _turn(clinic, provider, psid, "Fulano Mensageiro", "CPF")
        replies = await _turn(clinic, provider, psid, cpf, "código")
        # The same words whether or not the CPF is known: where the code went is not said.
        assert "Se houver um cadastro com esses dados" in replies[-1]
        assert wa_id[-4:] not in replies[-1]
        [sent] = await provider.wait_for(lambda r: r.recipient == wa_id and "verificação" in r.text)
        code = re.search(r"\b(\d{6})\b", sent.text).group(1)
        assert all(code not in r.text for r in provider.sent_to(psid))

        replies = await _turn(clinic, provider, psid, code, "próximas consultas")
        assert "Código confirmado" in replies[0]
        replies = await _turn(
            clinic,
            provider,
            psid,
            "Ver minhas consultas",
            "Suas próximas",
            "/consultar_agendamentos",
        )
        assert slot.doctor_name in replies[-1]

        async with db.session() as session:
            query = select(ChannelIdentity.patient_id).where(ChannelIdentity.external_id == psid)
            assert (await session.execute(query)).scalar_one() == known.id
    finally:
        await db.dispose()
    history = await _history(clinic, "messenger", psid)
    assert {m.channel for m in history} == {"whatsapp", "messenger"}
    assert all(code not in m.text for m in history if m.direction == Direction.OUTBOUND)
    log = clinic.log_path.read_text(errors="replace")
    assert code not in log and cpf not in log and wa_id not in log
