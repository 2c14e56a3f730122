"""The site widget's socket under bad input: every bad frame gets a pt-BR error frame, the
socket stays open, nothing is recorded, and nothing the visitor typed reaches the logs."""

import json
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.exc import OperationalError

from channels.webchat import CHANNEL, MAX_FRAME_BYTES, MAX_TEXT_BYTES
from core.catalog import t
from tests.clients import WidgetClient


@pytest.fixture
async def webchat(serve):
    return await serve(CHANNEL)


@pytest.fixture
async def widget(webchat) -> AsyncIterator[WidgetClient]:
    client = WidgetClient(webchat.url.replace("http://", "ws://") + "/webhooks/webchat/ws")
    await client.connect()
    yield client
    await client.close()


def _message(client_id: str, text: str, **extra: str) -> str:
    return json.dumps({"type": "message", "id": client_id, "text": text, **extra})


BAD_FRAMES = {
    # JSON's \u escapes let a lone surrogate through, which no database can store.
    "lone surrogate in the text": (
        r'{"type":"message","id":"surrogate1","text":"oi \ud800"}',
        "invalid_text",
        "surrogate1",
    ),
    "lone surrogate in the payload": (
        r'{"type":"message","id":"surrogate2","text":"oi","payload":"/\udfff"}',
        "invalid_text",
        "surrogate2",
    ),
    "a JSON list": ('[{"type": "message"}]', "malformed", None),
    "a JSON string": ('"oi"', "malformed", None),
    "JSON null": ("null", "malformed", None),
    "absurdly deep nesting": ("[" * 100_000 + "]" * 100_000, "malformed", None),
    "an oversized payload": (
        _message("bigpayload", "oi", payload="/" + "x" * MAX_TEXT_BYTES),
        "too_long",
        "bigpayload",
    ),
    "a frame over Sanic's default size": (
        _message("hugeframe1", "a" * MAX_FRAME_BYTES),
        "too_long",
        "hugeframe1",
    ),
    "a hello with a token that is not a string": ('{"type":"hello","token":42}', "malformed", None),
}


@pytest.mark.parametrize("bad", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_a_bad_frame_gets_a_clear_error_and_the_socket_stays_open(
    webchat, widget, caplog, bad
):
    raw, code, client_id = bad
    caplog.set_level(logging.INFO)
    await widget.ws.send_str(raw)
    error = await widget.expect(lambda f: f["type"] in ("error", "welcome", "ack"), timeout=10)

    assert error == {
        "type": "error",
        "id": client_id,
        "code": code,
        "message": t(f"widget.error.{code}", limit=MAX_TEXT_BYTES),
    }
    assert (await widget.say("oi"))["type"] == "ack"
    await webchat.settle()
    assert [m.text for m in await webchat.messages() if m.author_kind == "patient"] == ["oi"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_binary_frame_is_refused_without_closing_the_socket(webchat, widget):
    await widget.ws.send_bytes(_message("binary0001", "oi").encode())
    error = await widget.expect(lambda f: f["type"] in ("error", "ack"), timeout=10)

    assert (error["code"], error["message"]) == ("malformed", t("widget.error.malformed"))
    assert (await widget.say("tudo bem?"))["type"] == "ack"


async def test_a_database_failure_is_answered_and_logs_nothing_the_visitor_typed(
    webchat, widget, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)
    marker = "meu CPF é 529.982.247-25 MARCADOR-LGPD"

    async def database_down(inbound):
        raise OperationalError("INSERT INTO messages", {"text": inbound.text}, Exception("locked"))

    with monkeypatch.context() as patch:
        patch.setattr(webchat.inbox, "accept", database_down)
        error = await widget.say(marker, client_id="dbdown0001")

    assert error["type"] == "error"
    assert (error["id"], error["message"]) == ("dbdown0001", t("widget.error.unavailable"))
    assert "OperationalError" in caplog.text
    assert "529.982.247-25" not in caplog.text and "MARCADOR-LGPD" not in caplog.text
    # The widget can send it again once the database is back.
    assert (await widget.say(marker, client_id="dbdown0001"))["message_id"] is not None
    await webchat.settle()
    assert webchat.assistant.texts == [marker]


# As the JSON text carries them: a non-ASCII signature, a lone surrogate, too many parts.
@pytest.mark.parametrize("token", [r'"visitante.assinatura-\u00e9"', r'"\udc00.x"', '"a.b.c"'])
async def test_an_unreadable_token_gets_a_fresh_visitor(webchat, token):
    client = WidgetClient(webchat.url.replace("http://", "ws://") + "/webhooks/webchat/ws")
    try:
        await client.connect()
        await client.ws.send_str('{"type": "hello", "token": ' + token + "}")
        welcome = await client.expect(lambda f: f["type"] in ("welcome", "error"), timeout=10)
    finally:
        await client.close()
    assert welcome["type"] == "welcome"
    assert welcome["history"] == [] and welcome["token"] != client.token
