"""Personal data typed to the bot never reaches the assistant's tracker verbatim: the
platform's client sends placeholders over real HTTP (here to a local stand-in of the
connector that records what it got), and the identity form still reads the real CPF and
name from the platform when it needs them, so a claim by CPF works as before and the name
is saved on the patient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from itertools import count
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from channels.base import Inbound
from handoff.transitions import talking
from messaging.assistant import AssistantClient
from messaging.history import record_outbound
from messaging.inbound import Inbox
from messaging.redaction import redact, reveal
from models import AuthorKind, Conversation, Direction, IdentityClaim, Message, User
from tests.bot.conftest import handoff_of, sent, tracker
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


NAME_QUESTION = {"text": "Qual é o seu nome completo?", "custom": {"expects": "nome"}}
CPF_QUESTION = {"text": "Qual é o seu CPF? (só os números servem)"}


@pytest.fixture
async def scripted(ctx) -> AsyncIterator[tuple[list[dict[str, Any]], Any]]:
    """The platform's inbox in front of a stand-in connector that answers every turn with
    the next scripted bot message and records each body it got; `say` is the patient
    typing on the widget."""
    received: list[dict[str, Any]] = []
    script: list[dict[str, Any]] = []

    async def turn(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"messages": [script.pop(0)] if script else []})

    app = web.Application()
    app.router.add_post("/webhooks/platform/turn", turn)
    server = TestServer(app)
    await server.start_server()
    client = AssistantClient([str(server.make_url("")).rstrip("/")], "token")
    inbox = Inbox(ctx, client, {}, talking.join_open_episode)
    ids = count(1)

    async def say(text: str, then: dict[str, Any] | None = None) -> None:
        if then is not None:
            script.append(then)
        inbound = Inbound(
            channel="webchat",
            external_user_id="visitor-names",
            provider_message_id=f"names-{next(ids)}",
            text=text,
        )
        await inbox.accept(inbound)
        await inbox.drain()

    yield received, say
    await client.close()
    await server.close()


async def test_the_answer_to_the_name_question_reaches_the_assistant_as_a_placeholder(scripted):
    received, say = scripted
    await say("quero marcar uma consulta", then=NAME_QUESTION)
    await say("maria da silva", then=CPF_QUESTION)
    await say("Maria da Silva")  # now answering the CPF question: read as typed

    assert [body["text"] for body in received] == [
        "quero marcar uma consulta",
        "<nome_1>",
        "Maria da Silva",
    ]
    assert "maria" not in str(received[1]).lower()


async def test_a_request_instead_of_a_name_reaches_the_assistant_as_typed(scripted):
    received, say = scripted
    await say("quero marcar uma consulta", then=NAME_QUESTION)
    await say("quero falar com um atendente", then=NAME_QUESTION)
    await say("qual o endereço da clínica?", then=NAME_QUESTION)
    await say("Maria", then=NAME_QUESTION)  # one word is still a name: redacted

    assert [body["text"] for body in received[1:]] == [
        "quero falar com um atendente",
        "qual o endereço da clínica?",
        "<nome_1>",
    ]


async def _answered_name(clinic_db, typed: str):
    """The patient answered the name question with `typed`; the form reads the placeholder."""
    first = await patient_message(clinic_db.db, "quero marcar", user="visitor-named")
    async with clinic_db.db.session() as session:
        conversation = await session.get_one(Conversation, first.message.conversation_id)
        await record_outbound(
            session,
            conversation,
            text=NAME_QUESTION["text"],
            author_kind=AuthorKind.BOT,
            expects="nome",
        )
    message = (await patient_message(clinic_db.db, typed, user="visitor-named")).message
    seen = redact(typed, answering="nome").text
    assert seen == "<nome_1>"
    answer = tracker(
        message.patient_id,
        seen,
        slots={"requested_slot": "nome"},
        active_loop="identificacao_form",
    )
    answer.latest_message["metadata"] = {
        "conversation_id": message.conversation_id,
        "message_id": message.id,
    }
    return message, answer


async def test_the_identity_form_saves_the_name_it_only_saw_as_a_placeholder(clinic_db):
    message, answer = await _answered_name(clinic_db, "maria da silva")
    dispatcher = CollectingDispatcher()

    result = await Form().validate_nome("<nome_1>", dispatcher, answer, {})

    assert result == {"nome": "informado"}  # the tracker keeps no name
    async with clinic_db.db.session() as session:
        patient = await session.get_one(User, message.patient_id)
    assert patient.name == "Maria da Silva"


async def test_an_emergency_typed_as_the_name_is_still_an_emergency(clinic_db):
    _, answer = await _answered_name(clinic_db, "estou com dor no peito")
    dispatcher = CollectingDispatcher()

    await Form().run(dispatcher, answer, {"slots": {}, "forms": {}})

    assert sent(dispatcher) == ["utter_emergencia", "handoff"]
    assert handoff_of(dispatcher) == {"reason": "emergencia", "priority": "critical"}


async def test_the_bot_thanks_by_first_name_written_in_by_the_platform(ctx, scripted):
    received, say = scripted
    thanks = {"text": "Obrigada, <primeiro_nome>! Seus dados foram salvos."}
    await say("oi")
    patient = int(received[0]["sender"])
    async with ctx.db.session() as session:
        (await session.get_one(User, patient)).name = "Maria da Silva"
    await say("pronto", then=thanks)

    async with ctx.db.session() as session:
        query = select(Message.text).where(
            Message.patient_id == patient, Message.direction == Direction.OUTBOUND
        )
        texts = list((await session.execute(query.order_by(Message.id))).scalars())
    assert texts == ["Obrigada, Maria! Seus dados foram salvos."]


INTRODUCED = {
    "sou a Maria da Silva, quero agendar": "sou a <nome_1>, quero agendar",
    "meu nome é João Pereira": "meu nome é <nome_1>",
    "oi, aqui é a Ana": "oi, aqui é a <nome_1>",
    "me chamo joão pedro e quero remarcar": "me chamo <nome_1> e quero remarcar",
    "Boa tarde! Eu sou o Carlos Eduardo de Souza Lima": "Boa tarde! Eu sou o <nome_1>",
    "aqui quem fala é a Bia, cpf 529.982.247-25": "aqui quem fala é a <nome_1>, cpf <cpf_1>",
}
NOT_NAMES = [
    "sou cliente de vocês",
    "aqui é da clínica?",
    "sou alérgica a dipirona",
    "sou paciente da dra Juliana",
    "sou de São Paulo",
    "sou nova aqui, quero marcar na segunda",
    "quero com a dra Ana Carvalho em março",
]


async def test_a_name_after_a_self_introduction_reaches_the_assistant_as_a_placeholder(scripted):
    received, say = scripted
    for typed in [*INTRODUCED, *NOT_NAMES]:
        await say(typed)

    assert [body["text"] for body in received] == [*INTRODUCED.values(), *NOT_NAMES]
    for typed, body in zip(INTRODUCED, received, strict=False):
        assert redact(typed).values["<nome_1>"].lower() not in body["text"].lower()


async def test_the_patients_recorded_name_is_hidden_wherever_it_is_typed(clinic_db, scripted):
    received, say = scripted
    await say("oi")
    patient = int(received[0]["sender"])
    async with clinic_db.db.session() as session:
        (await session.get_one(User, patient)).name = "Ana Cláudia Peréira"
    await say("a claudia pereira vai levar a filha, com a dra Ana mesmo")
    await say("consulta de Ana Claudia Pereira às 14h")

    assert [body["text"] for body in received[1:]] == [
        # the clinic's Dra. Ana Carvalho keeps "Ana" readable
        "a <nome_1> vai levar a filha, com a dra Ana mesmo",
        "consulta de Ana <nome_1> às 14h",
    ]


async def test_an_action_reveals_a_name_it_only_saw_as_a_placeholder(clinic_db):
    typed = "sou a Maria da Silva, quero agendar"
    message = (await patient_message(clinic_db.db, typed, channel="webchat")).message
    async with clinic_db.db.session() as session:
        shown = await reveal(session, message.patient_id, message.id, "<nome_1>")
    assert shown == "Maria da Silva"
