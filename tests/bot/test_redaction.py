"""Personal data typed to the bot never reaches the assistant's tracker verbatim: the
platform's client sends placeholders over real HTTP (here to a local stand-in of the
connector that records what it got), and the identity form still reads the real CPF from
the platform when it needs it, so a claim by CPF works as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from rasa_sdk.executor import CollectingDispatcher

from messaging.assistant import AssistantClient
from messaging.redaction import redact
from models import IdentityClaim
from tests.bot.conftest import tracker
from tests.bot.test_identity_claims import CPF, Form, _claims, _known_on_whatsapp, code_secret
from tests.factories import patient_message

__all__ = ["code_secret"]  # the claims' autouse fixture, shared

TYPED_CPF = "meu cpf é 529.982.247-25"
TYPED = "meu cpf é 529.982.247-25, fone (11) 98765-4321 e email maria@exemplo.com"


@pytest.fixture
async def connector() -> AsyncIterator[tuple[TestServer, list[dict[str, Any]]]]:
    """The connector's /turn as the platform calls it, recording each body."""
    received: list[dict[str, Any]] = []

    async def turn(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"messages": [{"text": "ok"}]})

    app = web.Application()
    app.router.add_post("/webhooks/platform/turn", turn)
    server = TestServer(app)
    await server.start_server()
    yield server, received
    await server.close()


async def test_a_typed_cpf_phone_and_email_reach_the_assistant_as_placeholders(db, connector):
    server, received = connector
    message = (await patient_message(db, TYPED, channel="messenger")).message
    client = AssistantClient([str(server.make_url("")).rstrip("/")], "token")
    try:
        await client.turn(message.patient_id, message, message.text)
    finally:
        await client.close()
    [body] = received
    assert body["text"] == "meu cpf é <cpf_1>, fone <telefone_1> e email <email_1>"
    for verbatim in ("529.982.247-25", CPF, "98765-4321", "maria@exemplo.com"):
        assert verbatim not in str(body)


async def test_a_button_payload_reaches_the_assistant_unchanged(db, connector):
    server, received = connector
    payload = '/escolher_opcao{"opcao": "20261205T1400"}'
    message = (await patient_message(db, "14h", channel="webchat", payload=payload)).message
    client = AssistantClient([str(server.make_url("")).rstrip("/")], "token")
    try:
        await client.turn(message.patient_id, message, payload)
    finally:
        await client.close()
    assert received[0]["text"] == payload


async def test_the_identity_form_claims_a_cpf_it_only_saw_as_a_placeholder(clinic_db):
    owner = await _known_on_whatsapp(clinic_db.db)
    typed = (await patient_message(clinic_db.db, TYPED_CPF, channel="messenger")).message
    seen = redact(typed.text).text  # what the assistant read and the form extracted
    assert CPF not in seen
    on_messenger = tracker(typed.patient_id, seen, input_channel="messenger")
    on_messenger.latest_message["metadata"] = {
        "conversation_id": typed.conversation_id,
        "message_id": typed.id,
    }
    dispatcher = CollectingDispatcher()

    result = await Form().validate_cpf(seen, dispatcher, on_messenger, {})

    assert result == {"cpf": None}  # the form asks for the code next
    [claim] = await _claims(clinic_db.db)
    assert isinstance(claim, IdentityClaim)
    assert (claim.claimant_id, claim.owner_id, claim.claimed) == (typed.patient_id, owner, "cpf")


async def test_a_placeholder_of_another_patients_message_reveals_nothing(clinic_db):
    await _known_on_whatsapp(clinic_db.db)
    typed = (await patient_message(clinic_db.db, TYPED, channel="messenger")).message
    intruder = (await patient_message(clinic_db.db, "oi", channel="messenger")).message
    on_messenger = tracker(intruder.patient_id, "<cpf_1>", input_channel="messenger")
    on_messenger.latest_message["metadata"] = {"message_id": typed.id}
    dispatcher = CollectingDispatcher()

    result = await Form().validate_cpf("<cpf_1>", dispatcher, on_messenger, {})

    assert result == {"cpf": None}
    assert [m["response"] for m in dispatcher.messages] == ["utter_cpf_invalido"]
    assert await _claims(clinic_db.db) == []
