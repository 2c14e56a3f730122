"""The site chat widget: a WebSocket connector embeddable with one `<script>` tag.

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

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from sanic import Blueprint, response
from sanic.exceptions import WebsocketClosed
from sanic.request import Request
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed

from bot.channels.base import ChannelInput, ChannelSender, OnNewMessage, bot_context
from handoff.catalog import t
from handoff.context import Context, DeliveryFailed
from handoff.history import Inbound, message_view
from handoff.logs import log_failure
from models import ChannelIdentity, Conversation, Message

log = logging.getLogger(__name__)

CHANNEL = "webchat"
MAX_TEXT_BYTES = 4096
# Frames up to this size are read and answered; larger ones are refused unread. It is
# Sanic's default WEBSOCKET_MAX_SIZE, the most a widget could send before.
MAX_FRAME_BYTES = 2**20
# The socket's own cap (over it, the socket is closed with 1009, and the widget would resend
# the frame after reconnecting) sits above ours so that a text somewhat over our limit still
# gets the clear "too long" answer. Set on each connection: Rasa builds the Sanic server.
SOCKET_MAX_BYTES = MAX_FRAME_BYTES + 64 * 1024
HISTORY_LIMIT = 100
WIDGET_JS = Path(__file__).with_name("static") / "webchat.js"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# The widget writes the id right after the type, so it is found without parsing a huge frame.
_CLIENT_ID_NEAR_START = re.compile(r'"id"\s*:\s*"([A-Za-z0-9_-]{8,64})"')


class Sockets:
    """Open widget sockets of this process, by visitor id (one visitor may have many tabs)."""

    def __init__(self) -> None:
        self._by_visitor: dict[str, set[Any]] = defaultdict(set)

    def add(self, visitor_id: str, ws: Any) -> None:
        self._by_visitor[visitor_id].add(ws)

    def discard(self, visitor_id: str, ws: Any) -> None:
        sockets = self._by_visitor.get(visitor_id)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._by_visitor[visitor_id]

    async def push(self, visitor_id: str, frame: dict[str, Any]) -> None:
        data = json.dumps(frame, ensure_ascii=False)
        for ws in list(self._by_visitor.get(visitor_id, ())):
            try:
                await ws.send(data)
            except Exception:  # a socket closing mid-send; the widget resyncs on reconnect
                self.discard(visitor_id, ws)


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

    def verify(self, token: Any) -> str | None:
        if not isinstance(token, str) or not token.isascii() or token.count(".") != 1:
            return None
        visitor_id, signature = token.split(".")
        return visitor_id if hmac.compare_digest(signature, self._sign(visitor_id)) else None


class WebchatSender(ChannelSender):
    """Pushes to the visitor's open sockets; from other processes, through the bot process."""

    def __init__(
        self,
        sockets: Sockets | None,
        bot_url: str,
        token: str,
        ctx_factory: Callable[[], Context] = bot_context,
    ) -> None:
        super().__init__(ctx_factory)
        self.sockets = sockets
        self._deliver_url = f"{bot_url}/webhooks/{CHANNEL}/deliver"
        self._token = token

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    async def deliver(self, message: Message, identity: ChannelIdentity) -> str | None:
        if self.sockets is not None:
            await self.sockets.push(
                identity.external_id, {"type": "message", "message": patient_view(message)}
            )
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
                    raise DeliveryFailed(f"bot process answered HTTP {resp.status}", retryable=True)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise DeliveryFailed(
                f"bot process unreachable: {type(exc).__name__}", retryable=True
            ) from exc
        return None


class WebchatInput(ChannelInput):
    @classmethod
    def name(cls) -> str:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WebchatInput:
        return cls()

    @property
    def sockets(self) -> Sockets:
        return self.get_output_channel().sockets

    @property
    def tokens(self) -> VisitorTokens:
        return VisitorTokens(self.ctx.settings.session_secret)

    def get_output_channel(self) -> WebchatSender:
        return self.ctx.senders[CHANNEL]

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        bp = Blueprint(f"{CHANNEL}_webhook", url_prefix=f"/webhooks/{CHANNEL}")
        self.replay_on(bp, on_new_message)

        @bp.route("/widget.js", methods=["GET"])
        async def widget(_request: Request) -> response.HTTPResponse:
            return await response.file(WIDGET_JS, mime_type="application/javascript")

        @bp.route("/deliver", methods=["POST"])
        async def deliver(request: Request) -> response.HTTPResponse:
            return await self._deliver_from_other_process(request)

        @bp.websocket("/ws")
        async def socket(_request: Request, ws: Any) -> None:
            await self._serve(ws, on_new_message)

        return bp

    async def _deliver_from_other_process(self, request: Request) -> response.HTTPResponse:
        expected = f"Bearer {self.ctx.settings.internal_token}"
        if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            return response.json({"error": "forbidden"}, status=403)
        try:
            message_id = int((request.json or {})["message_id"])
        except (KeyError, TypeError, ValueError, json.JSONDecodeError):
            return response.json({"error": "message_id required"}, status=400)
        async with self.ctx.db.session() as session:
            message = await session.get(Message, message_id)
            if message is None or message.channel != CHANNEL or message.internal:
                return response.json({"error": "no such webchat message"}, status=404)
            conversation = await session.get(Conversation, message.conversation_id)
            identity = await session.get(ChannelIdentity, conversation.channel_identity_id)
        await self.sockets.push(
            identity.external_id, {"type": "message", "message": patient_view(message)}
        )
        return response.empty(status=204)

    async def _serve(self, ws: Any, on_new_message: OnNewMessage) -> None:
        ws.connection.max_size = SOCKET_MAX_BYTES
        visitor_id: str | None = None
        try:
            while True:
                try:
                    raw = await ws.recv()
                except (ConnectionClosed, WebsocketClosed):
                    return
                frame: dict[str, Any] = {}
                try:
                    frame = _parse_frame(raw)
                    visitor_id = await self._answer(ws, frame, visitor_id, on_new_message)
                except BadFrame as bad:
                    await _send_error(ws, bad.client_id, bad.code)
                except (ConnectionClosed, WebsocketClosed):
                    return
                except Exception as exc:  # e.g. the database is down: say so, keep the socket
                    log_failure(log, exc, "webchat: could not take a frame")
                    await _send_error(ws, frame.get("id"), "unavailable")
        finally:
            if visitor_id is not None:
                self.sockets.discard(visitor_id, ws)

    async def _answer(
        self,
        ws: Any,
        frame: dict[str, Any],
        visitor_id: str | None,
        on_new_message: OnNewMessage,
    ) -> str | None:
        """Answer one frame; returns the visitor the socket speaks for."""
        if frame.get("type") == "hello":
            token = frame.get("token")
            if token is not None and not isinstance(token, str):
                raise BadFrame("malformed")
            return await self._welcome(ws, token, visitor_id)
        if frame.get("type") == "message" and visitor_id is not None:
            await self._receive(ws, visitor_id, frame, on_new_message)
            return visitor_id
        raise BadFrame("malformed", frame.get("id"))

    async def _welcome(self, ws: Any, token: str | None, current: str | None) -> str:
        if current is not None:
            self.sockets.discard(current, ws)
        visitor_id = self.tokens.verify(token)
        if visitor_id is None:
            visitor_id, token = self.tokens.mint()
        self.sockets.add(visitor_id, ws)
        history = await self._history(visitor_id)
        await ws.send(
            json.dumps({"type": "welcome", "token": token, "history": history}, ensure_ascii=False)
        )
        return visitor_id

    async def _history(self, visitor_id: str) -> list[dict[str, Any]]:
        async with self.ctx.db.session() as session:
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

    async def _receive(
        self, ws: Any, visitor_id: str, frame: dict[str, Any], on_new_message: OnNewMessage
    ) -> None:
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
        recorded = await self.record(
            Inbound(
                channel=CHANNEL,
                external_user_id=visitor_id,
                provider_message_id=f"{visitor_id}:{client_id}",
                text=text,
                payload=payload,
            )
        )
        message_id = recorded.message.id if recorded else None
        await ws.send(json.dumps({"type": "ack", "id": client_id, "message_id": message_id}))
        if recorded is not None:
            self.route_later(recorded.message.id, on_new_message, recorded.message.patient_id)


class BadFrame(ValueError):
    """A frame the widget protocol refuses; `code` names the pt-BR error it is answered with."""

    def __init__(self, code: str, client_id: Any = None) -> None:
        super().__init__(code)
        self.code, self.client_id = code, client_id


def _parse_frame(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, str):  # a binary frame
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


async def _send_error(ws: Any, client_id: Any, code: str) -> None:
    message = t(f"widget.error.{code}", limit=MAX_TEXT_BYTES)
    await ws.send(
        json.dumps(
            {
                "type": "error",
                # Echoed only when well-formed: the widget matches it to the message it sent.
                "id": client_id
                if isinstance(client_id, str) and _CLIENT_ID.match(client_id)
                else None,
                "code": code,
                "message": message,
            },
            ensure_ascii=False,
        )
    )
