"""A typed phone links nothing until a one-time code sent to it comes back: the portal's
"Confirmar telefone" over real HTTP, with the code read where the fake WhatsApp provider
received it; and the merge that once gave a merely typed phone a match key."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from channels.registry import close_channels, enabled_channels
from core.settings import Settings
from messaging.identities import find_patient_by_phone, merge_patients
from models import ChannelIdentity, User
from tests.channels.fake_provider import FakeProvider
from tests.channels.webhooks import channel_env
from tests.factories import patient_message, staff
from tests.webapp import logged_in, mail_through, signed_up, web_server
from web.keys import CTX

MARIA = {
    "name": "Maria da Silva",
    "email": "maria@exemplo.com",
    "phone": "(11) 98765-4321",
    "cpf": "529.982.247-25",
    "password": "senha-da-maria",
    "consent": True,
}
PHONE = "+5511987654321"
WA_ID = PHONE[1:]


@pytest.fixture
async def server(database_url, provider: FakeProvider, smtp_server, imap_server) -> AsyncIterator:
    """The web app whose WhatsApp is the real channel, talking to the fake provider."""
    settings = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "INTERNAL_TOKEN": "internal-test-token",
            "SESSION_SECRET": "session-test-secret",
            "RASA_TOKEN": "rasa-test-token",
            **channel_env(provider.url, smtp_server.url, imap_server.url),
        }
    )
    provider.reset()
    channels = enabled_channels(settings)
    async with web_server(settings) as server:
        ctx = server.app[CTX]
        ctx.senders = {**ctx.senders, "whatsapp": channels["whatsapp"]}
        mail_through(server, smtp_server)
        yield server
    await close_channels(channels)
    provider.reset()


async def _maria(server) -> int:
    async with server.app[CTX].db.session() as session:
        query = select(User.id).where(User.email == MARIA["email"])
        return (await session.execute(query)).scalar_one()


def _code(provider: FakeProvider) -> str:
    [delivered] = provider.sent_to(WA_ID)
    text = delivered.text or delivered.json["template"]["components"][0]["parameters"][0]["text"]
    return re.search(r"\b(\d{6})\b", text).group(1)


async def test_a_typed_phone_links_nothing_until_its_code_comes_back(server, provider, smtp_server):
    http = await signed_up(server, smtp_server, MARIA)
    db = server.app[CTX].db
    maria = await _maria(server)
    try:
        # Before the proof: someone writing from that phone on WhatsApp is somebody else.
        before = await patient_message(db, "oi", channel="whatsapp", user=WA_ID, phone=PHONE)
        assert before.message.patient_id != maria
        async with db.session() as session:
            assert await find_patient_by_phone(session, PHONE) != await session.get(User, maria)
            # Reminders go to a patient's channel identities: Maria has none to the phone,
            # only her verified e-mail.
            mine = select(ChannelIdentity.channel).where(ChannelIdentity.patient_id == maria)
            assert (await session.execute(mine)).scalars().all() == ["email"]
        async with http.get("/api/portal/me") as response:
            assert (await response.json())["phone_verified"] is False

        async with http.post("/api/portal/me/phone/code") as response:
            assert response.status == 202, await response.text()
        code = _code(provider)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        async with http.post("/api/portal/me/phone/confirm", json={"code": wrong}) as response:
            assert response.status == 400
            assert (await response.json())["code"] == "error.code_wrong"
        async with http.post("/api/portal/me/phone/confirm", json={"code": code}) as response:
            assert response.status == 200, await response.text()
            assert (await response.json())["phone_verified"] is True
    finally:
        await http.close()

    # The WhatsApp patient (no account) was joined to Maria, and new messages are hers,
    # and so are SMS from the phone.
    after = await patient_message(db, "de novo", channel="whatsapp", user=WA_ID, phone=PHONE)
    assert after.message.patient_id == maria
    sms = await patient_message(db, "por SMS", channel="twilio", user=PHONE, phone=PHONE)
    assert sms.message.patient_id == maria
    async with db.session() as session:
        earlier = await session.get(User, before.message.patient_id)
        assert (earlier.is_active, earlier.merged_into_id) == (False, maria)


async def test_a_phone_proved_for_another_account_goes_to_a_person(server, provider, smtp_server):
    db = server.app[CTX].db
    other = await patient_message(db, "oi", channel="whatsapp", user=WA_ID, phone=PHONE)
    async with db.session() as session:
        holder = await session.get_one(User, other.message.patient_id)
        holder.password_hash, holder.name = "an account", "Joana Pereira"
    http = await signed_up(server, smtp_server, MARIA)
    try:
        async with http.post("/api/portal/me/phone/code") as response:
            assert response.status == 202
        code = _code(provider)  # to the WhatsApp the phone writes from
        async with http.post("/api/portal/me/phone/confirm", json={"code": code}) as response:
            assert response.status == 409
            refusal = await response.text()
            assert (await response.json())["code"] == "error.phone_held_by_account"
    finally:
        await http.close()
    async with db.session() as session:
        query = select(ChannelIdentity).where(ChannelIdentity.channel == "whatsapp")
        identity = (await session.execute(query)).scalar_one()
        assert identity.patient_id == other.message.patient_id
    maria = await _maria(server)

    # Staff find the phone's conversation in the queue, with the reason and a note naming
    # who proved it and the cadastro that holds it.
    attendant = await staff(db)
    workspace = await logged_in(server, attendant.email, "senha-segura")
    try:
        async with workspace.get("/api/conversations") as response:
            [queued] = await response.json()
        assert (queued["owner"], queued["handoff_reason"]) == (
            "queued",
            "telefone_em_outro_cadastro",
        )
        async with workspace.get(f"/api/conversations/{queued['id']}") as response:
            detail = await response.json()
    finally:
        await workspace.close()
    [note] = [m for m in detail["messages"] if m["internal"]]
    assert "Maria da Silva" in note["text"] and f"nº {maria}" in note["text"]
    assert f"nº {other.message.patient_id}" in note["text"]

    # Whoever proved the phone hears nothing of the other cadastro, on the portal or there.
    told = [refusal] + [m.text or "" for m in provider.sent_to(WA_ID)]
    assert len(told) > 2  # the refusal, the code and the queue's notice
    assert not any("Joana" in text or "cadastro nº" in text for text in told)


async def test_codes_to_one_phone_are_capped_per_day(server, provider, smtp_server):
    http = await signed_up(server, smtp_server, MARIA)
    try:
        statuses = []
        for _ in range(4):
            async with http.post("/api/portal/me/phone/code") as response:
                statuses.append(response.status)
                retry = response.headers.get("Retry-After")
    finally:
        await http.close()
    assert statuses == [202, 202, 202, 429] and retry is not None
    assert len(provider.sent_to(WA_ID)) == 3


async def test_merging_does_not_turn_a_typed_phone_into_a_proved_one(db):
    typed = (await patient_message(db, "oi", channel="webchat")).message.patient_id
    target = (await patient_message(db, "oi", channel="messenger")).message.patient_id
    async with db.session() as session:
        (await session.get(User, typed)).phone_e164 = PHONE

    async with db.session() as session:
        await merge_patients(
            session, source=await session.get(User, typed), target=await session.get(User, target)
        )

    async with db.session() as session:
        assert (await session.get(User, target)).phone_e164 == PHONE  # kept as contact data
        assert await find_patient_by_phone(session, PHONE) is None
    whatsapp = await patient_message(db, "oi", channel="whatsapp", user=WA_ID, phone=PHONE)
    assert whatsapp.message.patient_id != target
