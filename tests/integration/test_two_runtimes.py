"""The clinic as `make run` starts it: only loopback listeners, the platform answering the
providers, and the internal services (the assistant, the action server) refusing anyone
without their shared secret."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.channels.webhooks import SECRETS

pytestmark = pytest.mark.integration

LISTEN = "0A"


def _listeners(port: int) -> list[str]:
    """The local addresses (hex, as the kernel lists them) listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == LISTEN and int(port_hex, 16) == port:
                found.append(address)
    return found


def test_every_process_of_the_clinic_listens_on_loopback_only(clinic):
    settings = clinic.settings
    for url in (settings.web_url, settings.bot_url, settings.action_server_url):
        listeners = _listeners(urlsplit(url).port)
        assert listeners, f"nothing listens at {url}"
        # 127.0.0.1 as the kernel prints it (little-endian hex); never 0.0.0.0 or ::.
        assert set(listeners) == {"0100007F"}, (url, listeners)


async def test_the_whatsapp_verification_handshake_is_answered_by_the_platform(clinic):
    query = {
        "hub.mode": "subscribe",
        "hub.challenge": "1158201444",
        "hub.verify_token": SECRETS["WHATSAPP_VERIFY_TOKEN"],
    }
    url = f"{clinic.settings.web_url}/webhooks/whatsapp/webhook"
    async with aiohttp.ClientSession() as http, http.get(url, params=query) as response:
        assert (response.status, await response.text()) == (200, "1158201444")
    await asyncio.sleep(1)  # the access log line is written
    logged = clinic.log_path.read_text(errors="replace")
    assert "GET /webhooks/whatsapp/webhook 200" in logged
    assert SECRETS["WHATSAPP_VERIFY_TOKEN"] not in logged  # the query string is not logged


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-secret"])
async def test_the_assistant_refuses_a_turn_without_its_secret(clinic, authorization):
    turn = {"sender": "1", "message_id": "m1", "text": "oi", "channel": "webchat"}
    headers = {"Authorization": authorization} if authorization else {}
    url = f"{clinic.settings.bot_url}/webhooks/platform/turn"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=turn, headers=headers) as response,
    ):
        assert response.status == 401
        assert "oi" not in await response.text()


async def test_the_assistants_http_api_is_off(clinic):
    token = {"token": clinic.settings.rasa_token}
    async with aiohttp.ClientSession() as http:
        for path in ("/conversations/1/tracker", "/model/parse", "/webhooks/rest/webhook"):
            async with http.get(f"{clinic.settings.bot_url}{path}", params=token) as response:
                assert response.status in (404, 405), path


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-secret"])
async def test_the_action_server_refuses_a_call_without_its_secret(clinic, authorization):
    call = {
        "next_action": "action_listar_consultas",
        "sender_id": "1",
        "tracker": {"sender_id": "1", "slots": {}, "latest_message": {}, "events": []},
        "domain": {},
        "version": "3.6.21",
    }
    headers = {"Authorization": authorization} if authorization else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(clinic.settings.action_server_url, json=call, headers=headers) as response,
    ):
        assert response.status == 401
