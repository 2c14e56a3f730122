"""The site chat widget: a WebSocket on the platform's web process, embeddable with one
`<script>` tag (`/webhooks/webchat/widget.js`, socket at `/webhooks/webchat/ws`).

Protocol (JSON text frames):
  widget → server  {"type": "hello", "token": "<token from a previous welcome, optional>"}
                   {"type": "message", "id": "<client uuid>", "text": "...", "payload": "..."}
  server → widget  {"type": "welcome", "token": "...", "history": [message, ...]}
                   {"type": "ack", "id": "<client uuid>", "message_id": 123}
                   {"type": "message", "message": {...}}
                   {"type": "error", "id": "<client uuid or null>", "code": "...", "message": "..."}
                   codes: malformed, empty, too_long, invalid_text, unavailable (a failure
                   on our side: the same message may be sent again later)

The client id of a message is its idempotency key: a resend after a reconnect is acked again
but recorded and answered once. The visitor token is an HMAC-signed random id, so one visitor
cannot read another's conversation. Every bad frame (binary, not a JSON object, unreadable
text, too long) is answered with an error frame and the socket stays open: the widget shows
the error and drops the message instead of resending it after a reconnect.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from sqlalchemy import select

from channels.base import Inbound
from core.catalog import t
from core.context import DeliveryFailed
from core.logs import log_failure
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
# Where other processes (the worker) hand the web process a message to push to a widget.
DELIVER_PATH = "/internal/webchat/deliver"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# The widget writes the id right after the type, so it is found without parsing a huge frame.
_CLIENT_ID_NEAR_START = re.compile(r'"id"\s*:\s*"([A-Za-z0-9_-]{8,64})"')

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
    """What the widget may show: never internal notes, never staff ids."""
    view = message_view(message)
    return {
        key: view[key]
        for key in ("id", "direction", "author_kind", "text", "buttons", "created_at")
    }


class VisitorTokens:
    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def _sign(self, visitor_id: str) -> str:
        return hmac.new(self._key, visitor_id.encode(), hashlib.sha256).hexdigest()[:32]

    def mint(self) -> tuple[str, str]:
        visitor_id = secrets.token_urlsafe(18)
        return visitor_id, f"{visitor_id}.{self._sign(visitor_id)}"

    def verify(self, token: object) -> str | None:
        if not isinstance(token, str) or not token.isascii() or token.count(".") != 1:
            return None
        visitor_id, signature = token.split(".")
        return visitor_id if hmac.compare_digest(signature, self._sign(visitor_id)) else None


class WebchatSender:
    """With `sockets` (the web process; any process in production mode), pushes to the
    visitor's open sockets; otherwise asks the web process to (`DELIVER_PATH`, with the
    internal token)."""

    def __init__(self, sockets: Sockets | None, web_url: str, token: str) -> None:
        self.sockets = sockets
        self._deliver_url = f"{web_url}{DELIVER_PATH}"
        self._token = token

    async def deliver(self, message: Message, identity: ChannelIdentity) -> str | None:
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


class WidgetSocket:
    """One widget connection: hello, then messages, each answered with an ack or an error."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        sockets: Sockets,
        tokens: VisitorTokens,
        db: Database,
        accept: Accept,
    ) -> None:
        self.ws, self.sockets, self.tokens, self.db, self.accept = ws, sockets, tokens, db, accept
        self.visitor_id: str | None = None

    async def serve(self) -> None:
        try:
            async for raw in self.ws:
                if raw.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                await self._take(raw.data if raw.type == WSMsgType.TEXT else None)
        except ConnectionError:
            return
        finally:
            if self.visitor_id is not None:
                await self.sockets.discard(self.visitor_id, self.ws)

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
        visitor_id = self.tokens.verify(token)
        if visitor_id is None:
            visitor_id, token = self.tokens.mint()
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
        if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
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
        message_id = await self.accept(
            Inbound(
                channel=CHANNEL,
                external_user_id=visitor_id,
                provider_message_id=f"{visitor_id}:{client_id}",
                text=text,
                payload=payload,
            )
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
