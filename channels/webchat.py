"""The site chat widget: a WebSocket on the platform's web process, embeddable with one
`<script>` tag (`/webhooks/webchat/widget.js`, socket at `/webhooks/webchat/ws`).

Protocol (JSON text frames):
  widget → server  {"type": "hello", "token": "<token from a previous welcome, optional>"}
                   {"type": "message", "id": "<client uuid>", "text": "...", "payload": "..."}
  server → widget  {"type": "welcome", "token": "...", "history": [message, ...]}
                   {"type": "token", "token": "..."}  (the visitor token, rotated)
                   {"type": "ack", "id": "<client uuid>", "message_id": 123}
                   {"type": "message", "message": {...}}
                   {"type": "error", "id": "<client uuid or null>", "code": "...", "message": "..."}
                   codes: malformed, empty, too_long, invalid_text, rate_limited,
                   unavailable (a failure on our side: the same message may be sent again
                   later)

The client id of a message is its idempotency key: a resend after a reconnect is acked again
but recorded and answered once. The visitor token is an HMAC-signed random id with an expiry,
so one visitor cannot read another's conversation and a token left in a browser stops
opening it a day after the widget was last used: every welcome carries a fresh token, and an
open socket is sent a new one every hour, so a visitor who keeps chatting keeps their
conversation. Every bad frame (binary, not a JSON object, unreadable text, too long, over the
visitor's rate) is answered with an error frame and the socket stays open: the widget shows
the error and drops the message instead of resending it after a reconnect.

Files (a photo, a PDF) go over HTTP, not the socket: `POST /webhooks/webchat/files`
(`UPLOAD_PATH`), multipart with `token` (the visitor token; a logged-in portal patient's
session stands for it), `id` (the client id, as for a message) and then `file`. Answered
`201 {"id", "message_id", "attachment"}` (a resend of the same client id: the same message,
recorded and stored once), or the platform's error JSON `{"error": "<pt-BR>", "code"}`: 401 without
a token, 403 with a bad or expired one or from a page of another site, 413 too large, 400 a
type the clinic does not accept (by content, whatever the name), 429 over the visitor's rate.
The message is recorded like a typed one (once per client id) and its file stored with it.

The widget is open to anyone, so it is flood-limited (`WidgetLimits`, on the clinic's shared
rate limiter): socket openings and new conversations per client network, messages per
visitor and per network. A hello refused for starting too many conversations gets the
`rate_limited` error and the socket is closed with `TOO_MANY` (the widget waits a minute
before trying again).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from sqlalchemy import select

from channels.base import Inbound
from core.catalog import t
from core.context import DeliveryFailed, Reach
from core.logs import log_failure
from core.ratelimit import RateLimits
from core.relay import Relay, RelayUnavailable
from models import ChannelIdentity, Conversation, Message
from models.db import Database
from models.views import message_view

log = logging.getLogger(__name__)

CHANNEL = "webchat"
MAX_TEXT_BYTES = 4096
# Frames up to this size are read and answered; larger ones are refused unread.
MAX_FRAME_BYTES = 2**20
# The socket's own cap (over it, the socket is closed with 1009, and the widget would resend
# the frame after reconnecting) sits above ours so that a text somewhat over our limit still
# gets the clear "too long" answer.
SOCKET_MAX_BYTES = MAX_FRAME_BYTES + 64 * 1024
HISTORY_LIMIT = 100
WIDGET_JS = Path(__file__).with_name("static") / "webchat.js"
WIDGET_CSS = Path(__file__).with_name("static") / "webchat.css"
# A token opens its conversation for this long after it was issued; the widget is sent a new
# one on every connection and every `TOKEN_REFRESH_SECONDS` while a socket is open.
TOKEN_TTL_SECONDS = 24 * 3600
TOKEN_REFRESH_SECONDS = 3600
# Private close code: too many new conversations from this network; try again later.
TOO_MANY = 4029
# Where other processes (the worker) hand the web process a message to push to a widget.
DELIVER_PATH = "/internal/webchat/deliver"
# Where the widget sends a file.
UPLOAD_PATH = "/webhooks/webchat/files"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# The widget writes the id right after the type, so it is found without parsing a huge frame.
_CLIENT_ID_NEAR_START = re.compile(r'"id"\s*:\s*"([A-Za-z0-9_-]{8,64})"')

# The identity detail naming the (hashed) client network a visitor last wrote from.
SOURCE = "source"
# Records a widget message (and routes it in the background); the recorded id, or None for
# a message recorded before.
Accept = Callable[[Inbound], Awaitable["int | None"]]


class Sockets:
    """Open widget sockets of this process, by visitor id (one visitor may have many tabs).

    Across replicas (`relay`, production mode) this process listens on the channel of each
    visitor it holds a socket of, and a push is published there: it reaches the visitor's
    sockets wherever they live, once. A process without sockets (the worker) only publishes."""

    def __init__(self, relay: Relay | None = None) -> None:
        self._by_visitor: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self._relay = relay

    async def add(self, visitor_id: str, ws: web.WebSocketResponse) -> None:
        first = visitor_id not in self._by_visitor
        self._by_visitor[visitor_id].add(ws)
        if first and self._relay is not None:
            await self._relay.subscribe(
                _visitor_channel(visitor_id), functools.partial(self._push_here, visitor_id)
            )

    async def discard(self, visitor_id: str, ws: web.WebSocketResponse) -> None:
        sockets = self._by_visitor.get(visitor_id)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._by_visitor[visitor_id]
                if self._relay is not None:
                    await self._relay.unsubscribe(_visitor_channel(visitor_id))

    async def push(self, visitor_id: str, frame: dict[str, Any]) -> None:
        """RelayUnavailable when the frame could not be handed to the other replicas."""
        if self._relay is None:
            await self._push_here(visitor_id, frame)
        else:
            await self._relay.publish(_visitor_channel(visitor_id), frame)

    async def _push_here(self, visitor_id: str, frame: dict[str, Any]) -> None:
        data = json.dumps(frame, ensure_ascii=False)
        for ws in list(self._by_visitor.get(visitor_id, ())):
            try:
                await ws.send_str(data)
            except ConnectionError:  # a socket closing mid-send; the widget resyncs
                await self.discard(visitor_id, ws)

    async def close_all(self) -> None:
        """Close every socket: the widgets reconnect and reload their history (after the
        relay lost Redis, when pushes may have been missed)."""
        for sockets in list(self._by_visitor.values()):
            for ws in list(sockets):
                await ws.close(code=WSCloseCode.TRY_AGAIN_LATER)


def _visitor_channel(visitor_id: str) -> str:
    return f"widget:{visitor_id}"


def patient_view(message: Message) -> dict[str, Any]:
    """What the widget may show: never internal notes, never staff ids, of a file only what
    it is (never its key: the widget cannot open stored files)."""
    view = message_view(message)
    shown = {
        key: view[key]
        for key in ("id", "direction", "author_kind", "text", "buttons", "created_at")
    }
    shown["attachments"] = [
        {key: a[key] for key in _FILE_FACTS if key in a}
        for a in view["attachments"]
        if isinstance(a, dict)
    ]
    return shown


_FILE_FACTS = ("type", "kind", "filename", "mime_type", "size", "error")


class VisitorTokens:
    """`<visitor id>.<expiry, epoch seconds>.<HMAC of both>`: the visitor id is random, the
    signature keeps anyone from making up or extending one, and past its expiry a token is
    refused (whoever holds it starts a new conversation)."""

    def __init__(
        self,
        secret: str,
        *,
        ttl: float = TOKEN_TTL_SECONDS,
        refresh_every: float = TOKEN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = secret.encode()
        self.ttl, self.refresh_every, self.clock = ttl, refresh_every, clock

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, visitor_id: str) -> str:
        body = f"{visitor_id}.{int(self.clock() + self.ttl)}"
        return f"{body}.{self._sign(body)}"

    def verify(self, token: object) -> str | None:
        """The visitor id of a genuine token that has not expired, else None."""
        if not isinstance(token, str) or not token.isascii() or token.count(".") != 2:
            return None
        visitor_id, expires, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(f"{visitor_id}.{expires}")):
            return None
        return visitor_id if expires.isdigit() and int(expires) > self.clock() else None

    def visitor(self, token: object, signed_in: str | None) -> str | None:
        """Whose conversation a widget chats in: the logged-in portal patient's whatever
        token it brings, else the genuine token's visitor. A logged-in patient's token left
        in a shared browser opens nothing once they logged out: their conversation takes
        their session."""
        if signed_in is not None:
            return signed_in
        visitor_id = self.verify(token)
        return None if visitor_id is None or visitor_id.startswith(_PATIENT_VISITOR) else visitor_id


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: float


# Per client network: many patients may share one carrier NAT, so these are generous; per
# visitor (one person typing) they are tight.
SOCKETS_PER_NETWORK = Limit(120, 60)
NEW_VISITORS_PER_NETWORK = Limit(30, 600)
MESSAGES_PER_NETWORK = Limit(120, 60)
MESSAGES_PER_VISITOR = Limit(20, 60)


def client_network(address: str) -> str:
    """What a flood limit counts for one client: its IPv4 address, or the /64 of an IPv6
    address (one host is usually handed a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class WidgetLimits:
    """The widget's flood limits for one client address, counted on the clinic's shared rate
    limiter (so every web replica counts together)."""

    def __init__(self, limits: RateLimits, address: str, secret: str) -> None:
        self._limits = limits
        self._network = client_network(address)
        # Which network a conversation came from, without keeping the address: the handoff
        # bounds critical handoffs per source (handoff.emergencies).
        self.source = hmac.new(secret.encode(), self._network.encode(), "sha256").hexdigest()[:16]

    async def _wait(self, kind: str, key: str, limit: Limit) -> float:
        return await self._limits.hit(f"webchat:{kind}:{key}", limit.count, limit.seconds)

    async def socket_wait(self) -> float:
        """Seconds before this network may open another socket (0.0: now)."""
        return await self._wait("sockets", self._network, SOCKETS_PER_NETWORK)

    async def new_visitor_refused(self) -> bool:
        return await self._wait("visitors", self._network, NEW_VISITORS_PER_NETWORK) > 0

    async def message_refused(self, visitor_id: str) -> bool:
        # The visitor's own limit first: one chatty visitor does not use up their network's.
        return (
            await self._wait("messages", visitor_id, MESSAGES_PER_VISITOR) > 0
            or await self._wait("messages", self._network, MESSAGES_PER_NETWORK) > 0
        )


def valid_client_id(client_id: object) -> TypeGuard[str]:
    """Whether the widget's id of a message is one (its idempotency key)."""
    return isinstance(client_id, str) and _CLIENT_ID.match(client_id) is not None


def visitor_inbound(
    visitor_id: str,
    client_id: str,
    limits: WidgetLimits,
    *,
    text: str,
    payload: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> Inbound:
    """A widget message as the inbox records it: once per visitor and client id."""
    return Inbound(
        channel=CHANNEL,
        external_user_id=visitor_id,
        provider_message_id=f"{visitor_id}:{client_id}",
        text=text,
        payload=payload,
        attachments=attachments or [],
        identity_details={SOURCE: limits.source},
    )


class WebchatSender:
    """With `sockets` (the web process; any process in production mode), pushes to the
    visitor's open sockets; otherwise asks the web process to (`DELIVER_PATH`, with the
    internal token)."""

    def __init__(self, sockets: Sockets | None, web_url: str, token: str) -> None:
        self.sockets = sockets
        self._deliver_url = f"{web_url}{DELIVER_PATH}"
        self._token = token

    async def deliver(
        self, message: Message, identity: ChannelIdentity, reach: Reach = Reach.FREE
    ) -> str | None:
        if self.sockets is not None:
            frame = {"type": "message", "message": patient_view(message)}
            try:
                await self.sockets.push(identity.external_id, frame)
            except RelayUnavailable as exc:
                raise DeliveryFailed(f"live relay unavailable: {exc}", retryable=True) from exc
            return None
        timeout = aiohttp.ClientTimeout(total=5)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.post(
                    self._deliver_url,
                    json={"message_id": message.id},
                    headers={"Authorization": f"Bearer {self._token}"},
                ) as resp,
            ):
                if resp.status != 204:
                    raise DeliveryFailed(f"web process answered HTTP {resp.status}", retryable=True)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise DeliveryFailed(
                f"web process unreachable: {type(exc).__name__}", retryable=True
            ) from exc
        return None


_PATIENT_VISITOR = "patient-"


def patient_visitor_id(patient_id: int) -> str:
    """The widget's visitor id of a patient logged into the portal: their one conversation
    from any browser where they are logged in (its channel identity is theirs)."""
    return f"{_PATIENT_VISITOR}{patient_id}"


class WidgetSocket:
    """One widget connection: hello, then messages, each answered with an ack or an error.
    `signed_in`: the visitor id of the patient the request's portal session logs in; such
    a socket chats as them whatever token it brings."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        sockets: Sockets,
        tokens: VisitorTokens,
        limits: WidgetLimits,
        db: Database,
        accept: Accept,
        signed_in: str | None = None,
    ) -> None:
        self.ws, self.sockets, self.tokens, self.db, self.accept = ws, sockets, tokens, db, accept
        self.limits = limits
        self.signed_in = signed_in
        self.visitor_id: str | None = None

    async def serve(self) -> None:
        refresher = asyncio.create_task(self._refresh_token())
        try:
            async for raw in self.ws:
                if raw.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                await self._take(raw.data if raw.type == WSMsgType.TEXT else None)
        except ConnectionError:
            return
        finally:
            refresher.cancel()
            if self.visitor_id is not None:
                await self.sockets.discard(self.visitor_id, self.ws)

    async def _refresh_token(self) -> None:
        """While the socket is open, a fresh token before the last one expires."""
        while True:
            await asyncio.sleep(self.tokens.refresh_every)
            if self.visitor_id is not None and not self.ws.closed:
                token = self.tokens.issue(self.visitor_id)
                try:
                    await self.ws.send_str(json.dumps({"type": "token", "token": token}))
                except ConnectionError:
                    return

    async def _take(self, raw: str | None) -> None:
        frame: dict[str, Any] = {}
        try:
            frame = _parse_frame(raw)
            await self._answer(frame)
        except BadFrame as bad:
            await self._send_error(bad.client_id, bad.code)
        except ConnectionError:  # the socket closed under us: `serve` ends
            raise
        except Exception as exc:  # e.g. the database is down: say so, keep the socket
            log_failure(log, exc, "webchat: could not take a frame")
            await self._send_error(frame.get("id"), "unavailable")

    async def _answer(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "hello":
            token = frame.get("token")
            if token is not None and not isinstance(token, str):
                raise BadFrame("malformed")
            await self._welcome(token)
        elif frame.get("type") == "message" and self.visitor_id is not None:
            await self._receive(self.visitor_id, frame)
        else:
            raise BadFrame("malformed", frame.get("id"))

    async def _welcome(self, token: str | None) -> None:
        if self.visitor_id is not None:
            await self.sockets.discard(self.visitor_id, self.ws)
        visitor_id = self.tokens.visitor(token, self.signed_in)
        if visitor_id is None:
            if await self.limits.new_visitor_refused():
                await self._send_error(None, "rate_limited")
                await self.ws.close(code=TOO_MANY, message=b"too many conversations")
                return
            visitor_id = secrets.token_urlsafe(18)
        token = self.tokens.issue(visitor_id)
        self.visitor_id = visitor_id
        await self.sockets.add(visitor_id, self.ws)  # before reading the history: none missed
        history = await self._history(visitor_id)
        await self.ws.send_str(
            json.dumps({"type": "welcome", "token": token, "history": history}, ensure_ascii=False)
        )

    async def _history(self, visitor_id: str) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            query = (
                select(Message)
                .join(ChannelIdentity, ChannelIdentity.patient_id == Message.patient_id)
                .where(
                    ChannelIdentity.channel == CHANNEL,
                    ChannelIdentity.external_id == visitor_id,
                    Message.channel == CHANNEL,
                    Message.internal.is_(False),
                )
                .order_by(Message.id.desc())
                .limit(HISTORY_LIMIT)
            )
            messages = (await session.execute(query)).scalars().all()
        return [patient_view(m) for m in reversed(messages)]

    async def _receive(self, visitor_id: str, frame: dict[str, Any]) -> None:
        client_id, text, payload = frame.get("id"), frame.get("text"), frame.get("payload")
        if not valid_client_id(client_id):
            raise BadFrame("malformed")
        if not isinstance(text, str) or (payload is not None and not isinstance(payload, str)):
            raise BadFrame("malformed", client_id)
        text = text.strip()
        if not text:
            raise BadFrame("empty", client_id)
        if _utf8_size(text, client_id) > MAX_TEXT_BYTES or (
            payload is not None and _utf8_size(payload, client_id) > MAX_TEXT_BYTES
        ):
            raise BadFrame("too_long", client_id)
        if await self.limits.message_refused(visitor_id):
            raise BadFrame("rate_limited", client_id)
        message_id = await self.accept(
            visitor_inbound(visitor_id, client_id, self.limits, text=text, payload=payload)
        )
        await self.ws.send_str(
            json.dumps({"type": "ack", "id": client_id, "message_id": message_id})
        )

    async def _send_error(self, client_id: object, code: str) -> None:
        well_formed = isinstance(client_id, str) and _CLIENT_ID.match(client_id)
        frame = {
            "type": "error",
            # Echoed only when well-formed: the widget matches it to the message it sent.
            "id": client_id if well_formed else None,
            "code": code,
            "message": t(f"widget.error.{code}", limit=MAX_TEXT_BYTES),
        }
        await self.ws.send_str(json.dumps(frame, ensure_ascii=False))


async def push_recorded(db: Database, sockets: Sockets, message_id: int) -> bool:
    """Push a recorded webchat message to its visitor's sockets in this process (on behalf of
    another process); False when there is no such message for the widget."""
    async with db.session() as session:
        message = await session.get(Message, message_id)
        if message is None or message.channel != CHANNEL or message.internal:
            return False
        conversation = await session.get_one(Conversation, message.conversation_id)
        identity = await session.get_one(ChannelIdentity, conversation.channel_identity_id)
    await sockets.push(identity.external_id, {"type": "message", "message": patient_view(message)})
    return True


class BadFrame(ValueError):
    """A frame the widget protocol refuses; `code` names the pt-BR error it is answered with."""

    def __init__(self, code: str, client_id: object = None) -> None:
        super().__init__(code)
        self.code, self.client_id = code, client_id


def _parse_frame(raw: str | None) -> dict[str, Any]:
    if raw is None:  # a binary frame
        raise BadFrame("malformed")
    if len(raw) > MAX_FRAME_BYTES:  # characters, so at least as many bytes
        found = _CLIENT_ID_NEAR_START.search(raw, 0, 256)
        raise BadFrame("too_long", found.group(1) if found else None)
    try:
        frame = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise BadFrame("malformed") from None
    if not isinstance(frame, dict):
        raise BadFrame("malformed")
    return frame


def _utf8_size(text: str, client_id: str) -> int:
    """Its size as stored and sent; JSON's \\u escapes can smuggle in lone surrogates,
    which no database or provider takes."""
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        raise BadFrame("invalid_text", client_id) from None
