"""A patient logged into the portal who opens the site widget chats as themselves: no
identity step, their record and history; the token their socket was given opens nothing
once they are logged out."""

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import select

from models import Message, User
from tests.portal.test_patient_accounts import MARIA
from tests.webapp import mail_through, signed_up, web_server
from web.keys import CTX

WS = "/webhooks/webchat/ws"


@pytest.fixture
async def server(settings, smtp_server) -> AsyncIterator:
    async with web_server(settings) as server:
        mail_through(server, smtp_server)
        yield server


async def _hello(http: aiohttp.ClientSession, token: str | None = None) -> tuple:
    ws = await http.ws_connect(WS)
    await ws.send_str(json.dumps({"type": "hello", "token": token}))
    welcome = json.loads((await ws.receive()).data)
    assert welcome["type"] == "welcome"
    return ws, welcome


async def _say(ws, text: str, client_id: str) -> dict:
    await ws.send_str(json.dumps({"type": "message", "id": client_id, "text": text}))
    while True:
        frame = json.loads((await ws.receive()).data)
        if frame.get("id") == client_id:
            return frame


async def test_a_logged_in_patient_chats_as_themselves(server, smtp_server):
    http = await signed_up(server, smtp_server, MARIA)
    try:
        ws, _ = await _hello(http)
        ack = await _say(ws, "quero remarcar minha consulta", "first-message-1")
        assert ack["type"] == "ack"
        await ws.close()
        # Another tab, later: the same conversation, whatever token it brings.
        ws, welcome = await _hello(http, token="not-a-token")
        assert [m["text"] for m in welcome["history"]] == ["quero remarcar minha consulta"]
        token = welcome["token"]
        await ws.close()
    finally:
        await http.close()
    async with server.app[CTX].db.session() as session:
        maria = (
            await session.execute(select(User.id).where(User.email == MARIA["email"].lower()))
        ).scalar_one()
        message = await session.get_one(Message, ack["message_id"])
    assert message.patient_id == maria

    # Logged out (a shared computer): the token left in the browser opens nothing.
    anonymous = aiohttp.ClientSession(base_url=str(server.make_url("")))
    try:
        ws, welcome = await _hello(anonymous, token=token)
        assert welcome["history"] == [] and welcome["token"] != token
        await ws.close()
    finally:
        await anonymous.close()
