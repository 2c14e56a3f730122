"""The widget flood, replayed: a script opening conversations, sockets and messages from one
address is limited while another address is not; a flood of anonymous emergencies gets the
SAMU guidance every time but cannot fill the head of the human queue; pages of other sites
cannot open the widget's socket; the visitor token expires and rotates."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
import yaml
from sqlalchemy import select

from channels.webchat import (
    MESSAGES_PER_VISITOR,
    NEW_VISITORS_PER_NETWORK,
    SOCKETS_PER_NETWORK,
    TOKEN_TTL_SECONDS,
    TOO_MANY,
)
from core.catalog import t
from core.settings import ROOT, Settings
from handoff.emergencies import GLOBAL, PER_SOURCE, UNCHECKED_EMERGENCY
from handoff.transitions.queueing import request_handoff
from messaging.assistant import BotMessage
from models import Conversation, Message, Owner, Priority
from tests.channels.fake_provider import FakeProvider
from tests.channels.mail_servers import ImapServer, SmtpServer
from tests.channels.webhooks import PUBLIC_BASE_URL, channel_env
from tests.clients import WidgetClient
from tests.factories import patient_message
from web.webhooks import WIDGET_TOKENS

FLOODER = "203.0.113.7"
NEIGHBOUR = "198.51.100.9"
CLINIC_SITE = "https://www.clinicavidaplena.example"
SAMU = yaml.safe_load(Path(ROOT / "domain.yml").read_text())["responses"]["utter_emergencia"][0][
    "text"
]


@pytest.fixture
def channel_settings(
    database_url: str, provider: FakeProvider, smtp_server: SmtpServer, imap_server: ImapServer
) -> Settings:
    """The channel tests' settings, behind a trusted proxy (the test client) that says who
    each visitor is, with the widget embedded on the clinic's own site."""
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "INTERNAL_TOKEN": "internal-test-token",
            "SESSION_SECRET": "session-test-secret",
            "RASA_TOKEN": "rasa-test-token",
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "TRUSTED_PROXIES": "127.0.0.1",
            "WIDGET_ORIGINS": f"{CLINIC_SITE}, {PUBLIC_BASE_URL}",
            **channel_env(provider.url, smtp_server.url, imap_server.url),
        }
    )


@pytest.fixture
async def webchat(serve):
    return await serve("webchat")


@pytest.fixture
async def visitors(webchat):
    """`await visit(address, token=None)`: a widget connected from that client address."""
    url = webchat.url.replace("http://", "ws://") + "/webhooks/webchat/ws"
    opened: list[WidgetClient] = []

    async def visit(address: str, token: str | None = None, **headers: str) -> WidgetClient:
        client = WidgetClient(url, {"X-Forwarded-For": address, **headers})
        opened.append(client)
        client.welcome = await client.connect(token)
        return client

    yield visit
    for client in opened:
        await client.close()


async def _refused_hello(webchat, address: str) -> tuple[dict, int | None]:
    """Open a socket as a new visitor from `address`: the frame and close code it gets."""
    url = webchat.url + "/webhooks/webchat/ws"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, headers={"X-Forwarded-For": address}) as ws,
    ):
        await ws.send_str(json.dumps({"type": "hello"}))
        frame = json.loads((await ws.receive(timeout=10)).data)
        closing = await ws.receive(timeout=10)
        return frame, (closing.data if closing.type == aiohttp.WSMsgType.CLOSE else ws.close_code)


async def test_a_script_starting_conversations_from_one_address_is_stopped_another_is_not(
    webchat, visitors
):
    first = await visitors(FLOODER)
    for _ in range(NEW_VISITORS_PER_NETWORK.count - 1):
        await visitors(FLOODER)

    frame, close_code = await _refused_hello(webchat, FLOODER)

    assert frame == {
        "type": "error",
        "id": None,
        "code": "rate_limited",
        "message": t("widget.error.rate_limited"),
    }
    assert close_code == TOO_MANY
    # Someone else, and a visitor of the flooded address coming back, are served.
    assert (await (await visitors(NEIGHBOUR)).say("oi"))["type"] == "ack"
    returning = await visitors(FLOODER, first.token)
    assert (await returning.say("voltei"))["type"] == "ack"


async def test_a_visitor_sending_too_fast_is_told_to_wait_and_nothing_more_is_recorded(
    webchat, visitors
):
    chatty = await visitors(FLOODER)
    answers = [(await chatty.say(f"mensagem {n}"))["type"] for n in range(25)]

    assert answers == ["ack"] * MESSAGES_PER_VISITOR.count + ["error"] * 5
    refused = await chatty.say("mais uma")
    assert (refused["code"], refused["message"]) == (
        "rate_limited",
        t("widget.error.rate_limited"),
    )
    # Another visitor on the same address still talks: one chatty visitor is not its network.
    assert (await (await visitors(FLOODER)).say("oi"))["type"] == "ack"
    await webchat.settle()
    patient_texts = [m.text for m in await webchat.messages() if m.author_kind == "patient"]
    assert len(patient_texts) == MESSAGES_PER_VISITOR.count + 1


async def test_sockets_opened_too_fast_from_one_address_are_refused_before_the_upgrade(webchat):
    url = webchat.url + "/webhooks/webchat/ws"
    async with aiohttp.ClientSession() as http:
        for _ in range(SOCKETS_PER_NETWORK.count):
            async with http.ws_connect(url, headers={"X-Forwarded-For": FLOODER}):
                pass
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers={"X-Forwarded-For": FLOODER})
        assert refused.value.status == 429
        assert int(refused.value.headers["Retry-After"]) > 0
        async with http.ws_connect(url, headers={"X-Forwarded-For": NEIGHBOUR}) as ws:
            assert not ws.closed


@pytest.mark.parametrize("origin", [CLINIC_SITE, PUBLIC_BASE_URL, None])
async def test_the_widget_socket_opens_from_the_sites_that_embed_it(visitors, origin):
    headers = {"Origin": origin} if origin else {}
    assert (await (await visitors(NEIGHBOUR, **headers)).say("oi"))["type"] == "ack"


@pytest.mark.parametrize(
    "origin", ["https://golpe.example", "http://www.clinicavidaplena.example", "null"]
)
async def test_a_page_of_another_site_cannot_open_the_widget_socket(webchat, origin):
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(webchat.url + "/webhooks/webchat/ws", headers={"Origin": origin})
    assert refused.value.status == 403
    assert await webchat.messages() == []


# --- the visitor token ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _typed(welcome: dict) -> list[str]:
    return [m["text"] for m in welcome["history"] if m["direction"] == "in"]


def _visitor(token: str) -> str:
    return token.split(".")[0]


@pytest.fixture
def clock(webchat) -> Clock:
    clock = Clock()
    webchat.server.app[WIDGET_TOKENS].clock = clock
    return clock


async def test_every_connection_rotates_the_token_and_keeps_the_conversation(
    webchat, visitors, clock
):
    first = await visitors(NEIGHBOUR)
    await first.say("quero marcar consulta")
    clock.now += 3600

    again = await visitors(NEIGHBOUR, first.token)

    assert again.token != first.token
    assert _typed(again.welcome) == ["quero marcar consulta"]
    assert _typed((await visitors(NEIGHBOUR, again.token)).welcome) == ["quero marcar consulta"]


async def test_a_token_past_its_expiry_opens_nothing(webchat, visitors, clock):
    first = await visitors(NEIGHBOUR)
    await first.say("meu exame deu alterado")
    await webchat.settle()
    clock.now += TOKEN_TTL_SECONDS + 1

    later = await visitors(NEIGHBOUR, first.token)

    assert later.welcome["history"] == []
    assert _visitor(later.token) != _visitor(first.token)


async def test_an_open_widget_is_sent_fresh_tokens_and_the_old_one_expires(
    webchat, visitors, clock
):
    webchat.server.app[WIDGET_TOKENS].refresh_every = 0.2
    widget = await visitors(NEIGHBOUR)
    await widget.say("oi")
    clock.now += TOKEN_TTL_SECONDS / 2

    rotated = (await widget.expect(lambda f: f["type"] == "token", timeout=10))["token"]
    clock.now += TOKEN_TTL_SECONDS / 2 + 1  # the first token's life is over, not the new one's

    stale = await visitors(NEIGHBOUR, widget.token)
    fresh = await visitors(NEIGHBOUR, rotated)
    assert _typed(fresh.welcome) == ["oi"]
    assert _visitor(fresh.token) == _visitor(widget.token)
    assert stale.welcome["history"] == []
    assert _visitor(stale.token) != _visitor(widget.token)


# --- emergencies -----------------------------------------------------------------------------


def _answers_with_an_emergency(webchat) -> None:
    """The assistant as it answers an emergency phrase (bot/actions/common.py: emergency):
    the SAMU guidance, then a critical handoff."""

    async def turn(patient_id, message, text, *, answering=None, replay=False, names=frozenset()):
        return [
            BotMessage(SAMU),
            BotMessage(custom={"handoff": {"reason": "emergencia", "priority": "critical"}}),
        ]

    webchat.assistant.turn = turn


async def _queue(webchat) -> list[Conversation]:
    async with webchat.ctx.db.session() as session:
        query = (
            select(Conversation)
            .where(Conversation.owner == Owner.QUEUED)
            .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)
        )
        return list((await session.execute(query)).scalars())


async def test_an_emergency_flood_gets_the_samu_guidance_but_cannot_fill_the_queue_head(
    webchat, visitors
):
    ctx = webchat.ctx
    waiting = await patient_message(
        ctx.db,
        "quero falar com alguém",
        channel="whatsapp",
        user="5511988887777",
        phone="+5511988887777",
    )
    await request_handoff(ctx, waiting.conversation.id, reason="pedido_do_paciente")
    _answers_with_an_emergency(webchat)

    addresses = [FLOODER] * 5 + [f"192.0.2.{n}" for n in range(1, 6)]
    for address in addresses:
        visitor = await visitors(address)
        await visitor.say("socorro, meu pai desmaiou")
        assert (await visitor.next_reply())["text"] == SAMU
        await webchat.settle()
    known = await patient_message(
        ctx.db,
        "minha mãe está com dor no peito",
        channel="whatsapp",
        user="5511977776666",
        phone="+5511977776666",
    )
    await request_handoff(
        ctx, known.conversation.id, reason="emergencia", priority=Priority.CRITICAL
    )

    queue = await _queue(webchat)
    critical = [c for c in queue if c.priority == Priority.CRITICAL]
    flagged = [c for c in queue if c.handoff_reason == UNCHECKED_EMERGENCY]
    assert PER_SOURCE < GLOBAL < len(addresses)
    assert len(critical) == GLOBAL + 1  # the bound, and the patient the clinic knows
    assert known.conversation.id in {c.id for c in critical}
    assert queue[GLOBAL + 1].id == waiting.conversation.id  # next in line, before the rest
    assert len(flagged) == len(addresses) - GLOBAL
    assert all(c.priority == Priority.NORMAL for c in flagged)
    async with ctx.db.session() as session:
        guidance = (
            await session.execute(select(Message.conversation_id).where(Message.text == SAMU))
        ).scalars()
        assert len(set(guidance)) == len(addresses)
