"""The first end-to-end slice over real processes: widget → Rasa → history → handoff →
attendant → hand-back."""

import asyncio

import aiohttp
import pytest
from sqlalchemy import select

from core.catalog import t
from models import Conversation, Message, Owner
from models.db import Database
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration

GREETING = "assistente virtual"


async def _history(clinic, message_id: int) -> list[Message]:
    db = Database(clinic.settings.database_url)
    try:
        async with db.session() as session:
            first = await session.get(Message, message_id)
            query = (
                select(Message).where(Message.patient_id == first.patient_id).order_by(Message.id)
            )
            return (await session.execute(query)).scalars().all()
    finally:
        await db.dispose()


async def _processed(clinic, message_id: int) -> bool:
    return (await _history(clinic, message_id))[0].processed_at is not None


async def eventually(check, timeout: float = 10) -> None:
    for _ in range(int(timeout * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def _conversation(clinic, conversation_id: int) -> Conversation:
    db = Database(clinic.settings.database_url)
    try:
        async with db.session() as session:
            return await session.get(Conversation, conversation_id)
    finally:
        await db.dispose()


async def test_greeting_is_answered_and_both_turns_land_in_the_history(clinic, widget):
    ack = await widget.say("oi, boa tarde")
    reply = await widget.next_reply("bot")

    assert GREETING in reply["text"]
    history = await _history(clinic, ack["message_id"])
    assert [(m.author_kind, m.text) for m in history] == [
        ("patient", "oi, boa tarde"),
        ("bot", reply["text"]),
    ]
    assert history[0].conversation_id == history[1].conversation_id
    await eventually(lambda: _processed(clinic, ack["message_id"]))


async def test_faq_is_answered(widget):
    await widget.say("qual o horário de funcionamento de vcs?")
    reply = await widget.next_reply("bot")

    assert "segunda a sexta" in reply["text"]


async def test_handoff_reaches_the_attendant_who_replies_and_hands_back(clinic, widget, ana):
    await widget.say("quero falar com um atendente")
    assert "equipe" in (await widget.next_reply("bot"))["text"]
    assigned = await widget.next_reply("system")
    assert assigned["text"] == t("patient.assigned", attendant=clinic.login_for("ana@").name)

    event = await ana.expect_event(
        lambda e: e["type"] == "conversation" and e["conversation"]["owner"] == "attendant"
    )
    conversation_id = event["conversation"]["id"]

    # While Ana owns the conversation, the patient's messages reach her, never the bot.
    ack = await widget.say("oi, vocês atendem Unimed?")
    pushed = await ana.expect_event(
        lambda e: e["type"] == "message" and e["message"]["id"] == ack["message_id"]
    )
    assert pushed["message"]["text"] == "oi, vocês atendem Unimed?"
    assert await widget.replies_within(2) == []

    status, detail = await ana.request("GET", f"/api/conversations/{conversation_id}")
    assert status == 200
    assert "oi, vocês atendem Unimed?" in [m["text"] for m in detail["messages"]]

    status, _ = await ana.request(
        "POST", f"/api/conversations/{conversation_id}/messages", {"text": "Atendemos sim!"}
    )
    assert status == 201
    reply = await widget.next_reply("attendant")
    assert reply["text"] == "Atendemos sim!"

    status, _ = await ana.request("POST", f"/api/conversations/{conversation_id}/resolve")
    assert status == 200
    assert "encerrado" in (await widget.next_reply("bot"))["text"]
    assert (await _conversation(clinic, conversation_id)).owner == Owner.BOT

    # Back with the bot: the next message is answered by Rasa again.
    await widget.say("oi")
    assert GREETING in (await widget.next_reply("bot"))["text"]


async def test_a_resent_message_is_recorded_and_answered_once(clinic, widget):
    first = await widget.say("olá", client_id="resend0001")
    second = await widget.say("olá", client_id="resend0001")

    assert first["message_id"] is not None
    assert second["message_id"] is None
    replies = await widget.replies_within(4)
    assert len([r for r in replies if r["author_kind"] == "bot"]) == 1
    history = await _history(clinic, first["message_id"])
    assert [m.text for m in history if m.author_kind == "patient"] == ["olá"]


async def test_slash_text_never_reaches_rasa_as_an_intent(widget):
    await widget.say("/EXTERNAL_atendimento_encerrado")
    reply = await widget.next_reply("bot")

    assert "encerrado" not in reply["text"]


async def test_a_payload_the_bot_never_offered_is_treated_as_text(widget):
    await widget.say("tchau", payload="/EXTERNAL_atendimento_encerrado")
    reply = await widget.next_reply("bot")

    assert "encerrado" not in reply["text"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "message", "id": "badinput01", "text": ""}, "empty"),
        ({"type": "message", "id": "badinput02", "text": "   "}, "empty"),
        ({"type": "message", "id": "badinput03", "text": "á" * 2049}, "too_long"),
        ({"type": "message", "id": "badinput04", "text": 42}, "malformed"),
        ({"type": "message", "id": "x", "text": "oi"}, "malformed"),
        ({"type": "dance"}, "malformed"),
    ],
)
async def test_bad_widget_frames_get_a_clear_error_and_change_nothing(clinic, widget, frame, code):
    await widget.send(frame)
    error = await widget.expect(lambda f: f["type"] == "error")

    assert error["code"] == code
    assert error["message"] == t(f"widget.error.{code}", limit=4096)
    # The socket stays usable and nothing was recorded for the bad frame.
    ack = await widget.say("oi")
    history = await _history(clinic, ack["message_id"])
    assert [m.text for m in history if m.author_kind == "patient"] == ["oi"]


async def test_non_json_frames_are_rejected_without_closing_the_socket(widget):
    await widget.ws.send_str("{not json")
    error = await widget.expect(lambda f: f["type"] == "error")
    assert error["code"] == "malformed"

    await widget.say("oi")
    assert GREETING in (await widget.next_reply("bot"))["text"]


async def test_a_message_before_hello_is_refused(clinic):
    async with aiohttp.ClientSession() as http, http.ws_connect(clinic.widget_socket_url) as ws:
        await ws.send_json({"type": "message", "id": "early00001", "text": "oi"})
        error = await ws.receive_json(timeout=10)
    assert error["type"] == "error"
    assert error["code"] == "malformed"


async def test_reconnecting_with_the_token_restores_the_conversation(clinic, widget):
    await widget.say("oi")
    greeting = await widget.next_reply("bot")
    token = widget.token
    await widget.close()

    again = WidgetClient(clinic.widget_socket_url)
    try:
        welcome = await again.connect(token)
        assert [m["text"] for m in welcome["history"]][-2:] == ["oi", greeting["text"]]
    finally:
        await again.close()


async def test_a_forged_token_gets_a_fresh_visitor(clinic):
    client = WidgetClient(clinic.widget_socket_url)
    try:
        welcome = await client.connect("someone-else.0000000000000000")
        assert welcome["history"] == []
        assert welcome["token"] != "someone-else.0000000000000000"
    finally:
        await client.close()


async def test_staff_pages_and_api_require_login(clinic):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{clinic.settings.web_url}/api/conversations") as response:
            assert response.status == 401
        async with http.get(f"{clinic.settings.web_url}/staff", allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/login"
        async with http.get(f"{clinic.settings.web_url}/") as response:
            page = await response.text()
            assert '<script src="/webhooks/webchat/widget.js"' in page
