"""The platform sends the one-time code the assistant asked for (`{"identity_code": ...}` in a
bot reply): to the known patient's WhatsApp on the fake provider, never to the Messenger
patient who claimed the CPF; the history keeps only that a code was sent; a code that cannot
go is answered as a decoy is (the claimant cannot tell a known CPF from an unknown one)
while the known patient's conversation goes to a person."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from messaging.assistant import BotMessage, say
from messaging.verification import Check, check_code, open_claim
from models import ChannelIdentity, Conversation, IdentityClaim, Message, User, utcnow
from tests.channels.webhooks import SECRETS
from tests.factories import patient_message

PHONE = "+5511987650042"
WA_ID = PHONE[1:]
PSID = "6245342622200042"
OTHER_PSID = "6245342622200043"
CPF = "52998224725"
ANNOUNCEMENT = "Vou enviar um código para o WhatsApp terminado em 0042."
MESSAGES_PATH = f"/{SECRETS['WHATSAPP_PHONE_NUMBER_ID']}/messages"


@pytest.fixture
async def claim(channel_ctx, provider) -> IdentityClaim:
    """A patient known on WhatsApp, with a CPF, and a Messenger patient who typed that CPF."""
    provider.reset()
    known = await patient_message(channel_ctx.db, "oi", channel="whatsapp", user=WA_ID, phone=PHONE)
    claimant = await patient_message(channel_ctx.db, "oi", channel="messenger", user=PSID)
    async with channel_ctx.db.session() as session:
        (await session.get(User, known.message.patient_id)).cpf = CPF
    async with channel_ctx.db.session() as session:
        await open_claim(session, claimant.message.patient_id, cpf=CPF, now=utcnow())
    async with channel_ctx.db.session() as session:
        return (await session.execute(select(IdentityClaim))).scalar_one()


async def _ask_for_the_code(channel_ctx, claim: IdentityClaim) -> None:
    """The assistant's question, answered on Messenger as the platform applies the bot's
    answer."""
    question = BotMessage(ANNOUNCEMENT, custom={"identity_code": {"claim": claim.id}})
    await say(channel_ctx, claim.claimant_id, "messenger", [question])


async def _stored(channel_ctx, model, **where):
    async with channel_ctx.db.session() as session:
        query = select(model).filter_by(**where).order_by(model.id)
        return list((await session.execute(query)).scalars())


async def test_the_code_goes_to_the_known_patients_whatsapp_and_only_its_mention_is_kept(
    channel_ctx, provider, claim, caplog
):
    for logger in ("handoff", "messaging", "channels"):
        caplog.set_level(logging.DEBUG, logger=logger)

    await _ask_for_the_code(channel_ctx, claim)

    [announcement] = provider.sent_to(PSID)
    assert announcement.text == ANNOUNCEMENT
    [delivered] = provider.sent_to(WA_ID)
    code = re.search(r"\b(\d{6})\b", delivered.text).group(1)
    assert "não passe o código a ninguém" in delivered.text
    [record] = await _stored(channel_ctx, Message, sealed=True)
    assert (record.patient_id, record.channel, record.delivery_status) == (
        claim.owner_id,
        "whatsapp",
        "sent",
    )
    assert code not in record.text and record.author_kind == "system"
    [stored] = await _stored(channel_ctx, IdentityClaim)
    assert stored.status == "sent" and stored.code_hash and code not in stored.code_hash
    assert code not in caplog.text and CPF not in caplog.text and WA_ID not in caplog.text

    # Asked again (e.g. after a wrong code): no second code.
    await _ask_for_the_code(channel_ctx, claim)
    assert len(provider.sent_to(WA_ID)) == 1


async def test_outside_the_24h_window_the_code_goes_in_the_authentication_template(
    channel_ctx, provider, claim
):
    async with channel_ctx.db.session() as session:
        [whatsapp] = await _stored(channel_ctx, ChannelIdentity, channel="whatsapp")
        whatsapp = await session.get(ChannelIdentity, whatsapp.id)
        whatsapp.last_inbound_at -= timedelta(days=3)

    await _ask_for_the_code(channel_ctx, claim)

    [delivered] = provider.sent_to(WA_ID)
    template = delivered.json["template"]
    [body, button] = template["components"]
    code = body["parameters"][0]["text"]
    assert re.fullmatch(r"\d{6}", code)
    assert template["name"] == "codigo_verificacao"
    assert button == {
        "type": "button",
        "sub_type": "url",
        "index": "0",
        "parameters": [{"type": "text", "text": code}],
    }


async def _answered(channel_ctx, provider, claim: IdentityClaim, psid: str) -> dict:
    """What the claimant on Messenger sees of a claim: the messages that reach them, where
    their conversation stands, and the answer to a wrong code."""
    await _ask_for_the_code(channel_ctx, claim)
    [conversation] = await _stored(channel_ctx, Conversation, patient_id=claim.claimant_id)
    async with channel_ctx.db.session() as session:
        checked = await check_code(
            session, claim.id, "000000", secret=channel_ctx.settings.session_secret, now=utcnow()
        )
    return {
        "texts": [request.text for request in provider.sent_to(psid)],
        "conversation": (conversation.owner, conversation.handoff_reason),
        "wrong_code": checked,
    }


async def test_a_code_the_provider_refuses_looks_like_a_decoy_and_staff_are_told(
    channel_ctx, provider, claim
):
    provider.respond(MESSAGES_PATH, 400, {"error": {"code": 131026, "message": "undeliverable"}})
    stranger = await patient_message(channel_ctx.db, "oi", channel="messenger", user=OTHER_PSID)
    async with channel_ctx.db.session() as session:
        await open_claim(session, stranger.message.patient_id, cpf="11144477735", now=utcnow())
    [decoy] = await _stored(channel_ctx, IdentityClaim, claimant_id=stranger.message.patient_id)
    assert decoy.destination_id is None  # nobody has that CPF

    real = await _answered(channel_ctx, provider, claim, PSID)
    unknown = await _answered(channel_ctx, provider, decoy, OTHER_PSID)

    assert real == unknown
    assert real["texts"] == [ANNOUNCEMENT]
    assert real["conversation"] == ("bot", None)
    assert real["wrong_code"].result == Check.WRONG
    # Staff find the known patient's conversation, where the code failed, in the queue.
    [record] = await _stored(channel_ctx, Message, sealed=True)
    assert record.delivery_status == "failed"
    [owners] = await _stored(channel_ctx, Conversation, patient_id=claim.owner_id)
    assert (owners.owner, owners.handoff_reason) == ("queued", "codigo_nao_entregue")
    [note] = await _stored(channel_ctx, Message, conversation_id=owners.id, internal=True)
    assert f"cadastro nº {claim.claimant_id}" in note.text and "CPF" in note.text
