"""What WhatsApp Cloud, Messenger and Instagram share as Meta platforms: the signed webhook
(X-Hub-Signature-256 and the hub.challenge handshake), the Graph API send call and its
errors, and the Messenger Platform's `messaging[]` events and Send API (Messenger and
Instagram Direct).

The Graph API is called with plain HTTP (`ProviderChannel.post`): Meta maintains no
Python SDK for it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from abc import abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from aiohttp import web

from channels.base import (
    BadPayload,
    ChannelConfig,
    Event,
    Ignored,
    Inbound,
    Media,
    MediaUnavailable,
    ProviderChannel,
    StatusUpdate,
    Unsent,
    Watermark,
    WebhookRequest,
    from_epoch,
    json_object,
    numbered_options,
    same_origin,
    same_secret,
    send_parts,
    split_text,
    tolerant,
    unset,
)
from core.context import DeliveryFailed, Reach
from core.settings import Settings
from models import ChannelIdentity, DeliveryStatus, Message

DEFAULT_GRAPH_URL = "https://graph.facebook.com/v24.0"
# The kinds of attachment that carry a file (not a location, a sticker id or a shared link).
FILE_KINDS = frozenset({"image", "audio", "video", "document", "sticker"})
# Graph's answer about a media id (its URL, type and size) is small.
MEDIA_INFO_LIMIT = 64 * 1024
# Graph error codes that mean "throttled" or "temporarily unavailable", though sent as HTTP 400.
RETRYABLE_GRAPH_CODES = {1, 2, 4, 17, 32, 341, 613, 80007, 130429, 131000, 131016, 131056}


@dataclass(frozen=True)
class MetaAppConfig:
    """A Meta app's webhook secrets and access token; `names` are their variables."""

    names: tuple[str, str, str]
    verify_token: str
    app_secret: str
    access_token: str
    graph_url: str

    @classmethod
    def from_settings(cls, settings: Settings, names: tuple[str, str, str]) -> MetaAppConfig:
        env = settings.channel_env
        verify_token, app_secret, access_token = (env.get(name, "") for name in names)
        return cls(
            names=names,
            verify_token=verify_token,
            app_secret=app_secret,
            access_token=access_token,
            graph_url=env.get("META_GRAPH_URL", DEFAULT_GRAPH_URL).rstrip("/"),
        )

    @property
    def missing(self) -> list[str]:
        values = (self.verify_token, self.app_secret, self.access_token)
        return unset(dict(zip(self.names, values, strict=True)))


class MetaConfig(ChannelConfig, Protocol):
    """A Meta channel's config: the app's settings, and whatever else the channel needs."""

    @property
    def app(self) -> MetaAppConfig: ...


def valid_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256: `sha256=` + hex HMAC-SHA256 of the raw body with the app secret."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return same_secret(header.removeprefix("sha256="), expected)


def graph_error(reply_body: object) -> tuple[str, int | None]:
    """A Graph API error body as (reason for staff, error code)."""
    error = reply_body.get("error") if isinstance(reply_body, dict) else None
    if not isinstance(error, dict):
        return str(reply_body)[:200], None
    code = error.get("code")
    return f"Graph error {code}: {error.get('message', '')}".strip(), code


class MetaChannel(ProviderChannel):
    """A Meta app's channel: the verify-token handshake on GET, signed JSON batches on POST,
    sends by the Graph API. Its config has the app's settings in `app`."""

    # Meta sends up to 3 MB per delivery (up to 1000 updates).
    max_body: ClassVar[int] = 3 * 1024 * 1024
    config: MetaConfig

    def verify(self, request: WebhookRequest) -> bool:
        return valid_signature(
            self.config.app.app_secret, request.body, request.headers.get("X-Hub-Signature-256")
        )

    async def handshake(self, request: WebhookRequest) -> web.Response:
        token = request.query.get("hub.verify_token") or ""
        if request.query.get("hub.mode") == "subscribe" and same_secret(
            token, self.config.app.verify_token
        ):
            return web.Response(text=request.query.get("hub.challenge") or "")
        return web.json_response({"error": "verification failed"}, status=403)

    def decode(self, request: WebhookRequest) -> list[Event]:
        payload = json_object(request)
        if not isinstance(payload.get("entry"), list):
            raise BadPayload("expected an object with an entry[] list")
        return self.parse(payload)

    @classmethod
    @abstractmethod
    def parse(cls, payload: dict[str, Any]) -> list[Event]:
        """The channel's module-level `parse`."""

    def ack(self) -> web.Response:
        return web.Response(text="EVENT_RECEIVED")

    async def fetch_media(self, attachment: dict[str, Any], limit: int) -> Media | None:
        """WhatsApp Cloud names a media id: the Graph API says where its file is, and both
        are read with the app's token. Messenger and Instagram give the file's URL."""
        if attachment.get("type") not in FILE_KINDS:
            return None
        app = self.config.app
        if media_id := attachment.get("id"):
            bearer = {"Authorization": f"Bearer {app.access_token}"}
            info = await self.download(
                f"{app.graph_url}/{media_id}", limit=MEDIA_INFO_LIMIT, headers=bearer
            )
            try:
                url = str(json.loads(info)["url"])
            except (ValueError, KeyError, TypeError) as exc:
                raise MediaUnavailable("Graph gave no media URL") from exc
            return Media(await self._download_from(url, limit, bearer), attachment.get("filename"))
        if given := attachment.get("url"):
            return Media(await self._download_from(str(given), limit), attachment.get("title"))
        return None

    async def _download_from(
        self, url: str, limit: int, headers: dict[str, str] | None = None
    ) -> bytes:
        """Meta's media live on its HTTPS CDN; plain HTTP only on the Graph API's own host
        (a local stand-in of it)."""
        if not (url.startswith("https://") or same_origin(url, self.config.app.graph_url)):
            raise MediaUnavailable("media URL is not HTTPS")
        return await self.download(url, limit=limit, headers=headers)

    async def graph_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the Graph API with the app's token; a refusal is a `DeliveryFailed` with
        Graph's reason, retryable when Graph says it is throttling."""
        app = self.config.app
        reply = await self.post(
            f"{app.graph_url}/{path}",
            json_body=body,
            headers={"Authorization": f"Bearer {app.access_token}"},
        )
        if reply.ok and isinstance(reply.body, dict):
            return reply.body
        reason, code = graph_error(reply.body)
        raise DeliveryFailed(
            f"{self.name}: HTTP {reply.status}, {reason}",
            retryable=reply.retryable or code in RETRYABLE_GRAPH_CODES,
        )


# --- Messenger Platform (Messenger and Instagram Direct) -------------------------------------


def parse_messaging(payload: dict[str, Any], channel: str) -> list[Event]:
    """Every `messaging[]` (and handover `standby[]`) event of every entry."""
    events: list[Event] = []
    for entry in payload["entry"]:
        for item in [*entry.get("messaging", []), *entry.get("standby", [])]:
            events += tolerant("messaging", _messaging_event, item, channel)
    return events


def _messaging_event(item: dict[str, Any], channel: str) -> list[Event]:
    sender = str(item["sender"]["id"])
    sent_at = from_epoch(item["timestamp"] / 1000) if item.get("timestamp") else None
    if "message" in item:
        return _message(item["message"], sender, sent_at, channel)
    if "postback" in item:
        postback = item["postback"]
        # Postbacks may lack a mid: the sender and the tap's time identify them.
        mid = postback.get("mid") or f"postback:{sender}:{item['timestamp']}"
        title = str(postback.get("title") or "")
        return [_inbound(channel, sender, mid, sent_at, text=title, payload=postback["payload"])]
    if "delivery" in item:
        return _receipt(item["delivery"], sender, DeliveryStatus.DELIVERED)
    if "read" in item:
        return _receipt(item["read"], sender, DeliveryStatus.READ)
    kinds = [key for key in item if key not in ("sender", "recipient", "timestamp")]
    return [Ignored(kinds[0] if kinds else "empty messaging item")]


def _message(
    message: dict[str, Any], sender: str, sent_at: datetime | None, channel: str
) -> list[Event]:
    mid = message["mid"]
    if message.get("is_echo"):
        return [Ignored("echo")]  # our own page's message, already in the history
    if message.get("is_deleted"):
        return [Unsent(mid)]
    if message.get("is_unsupported"):
        return [_inbound(channel, sender, mid, sent_at, attachments=[{"type": "unsupported"}])]
    quick_reply = (message.get("quick_reply") or {}).get("payload")
    attachments = [_attachment(a) for a in message.get("attachments", [])]
    text = str(message.get("text") or "")
    return [
        _inbound(
            channel, sender, mid, sent_at, text=text, payload=quick_reply, attachments=attachments
        )
    ]


def _attachment(attachment: dict[str, Any]) -> dict[str, Any]:
    kind = attachment.get("type", "fallback")
    payload = attachment.get("payload") or {}
    kept = {"type": "document" if kind == "file" else kind}
    for key in ("url", "title", "sticker_id"):
        if payload.get(key) is not None:
            kept[key] = payload[key]
    if kind == "location" and "coordinates" in payload:
        kept.update(payload["coordinates"])
    return kept


def _receipt(receipt: dict[str, Any], sender: str, status: DeliveryStatus) -> list[Event]:
    if "mid" in receipt:  # Instagram names the message it reports on
        return [StatusUpdate(receipt["mid"], status)]
    events: list[Event] = [StatusUpdate(mid, status) for mid in receipt.get("mids", [])]
    if "watermark" in receipt:
        until = datetime.fromtimestamp(receipt["watermark"] / 1000, tz=UTC)
        events.append(Watermark(sender, status, until))
    return events


def _inbound(
    channel: str,
    sender: str,
    mid: str,
    sent_at: datetime | None,
    *,
    text: str = "",
    payload: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> Inbound:
    return Inbound(
        channel=channel,
        external_user_id=sender,
        provider_message_id=mid,
        text=text,
        payload=payload,
        attachments=attachments or [],
        sent_at=sent_at,
    )


@dataclass(frozen=True)
class MessagingConfig:
    app: MetaAppConfig

    @property
    def missing(self) -> list[str]:
        return self.app.missing


class MessagingChannel(MetaChannel):
    """A Messenger Platform channel (Messenger, Instagram Direct): its webhook's `messaging[]`
    events, and the Send API: text parts within the channel's limit, buttons as quick replies
    on the last part, the messaging windows."""

    ENV: ClassVar[tuple[str, str, str]]
    TEXT_LIMIT: ClassVar[int]
    QUICK_REPLIES: ClassVar[int] = 13
    QUICK_REPLY_TITLE: ClassVar[int] = 20
    config: MessagingConfig

    @classmethod
    def load_config(cls, settings: Settings) -> MessagingConfig:
        return MessagingConfig(MetaAppConfig.from_settings(settings, cls.ENV))

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> list[Event]:
        return parse_messaging(payload, cls.name)

    def messaging_type(self, reach: Reach) -> dict[str, str]:
        """RESPONSE inside the 24 h window; a person's reply up to 7 days with the
        HUMAN_AGENT tag; anything else cannot be sent (no templates here)."""
        if reach == Reach.FREE:
            return {"messaging_type": "RESPONSE"}
        if reach == Reach.HUMAN_AGENT:
            return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        raise DeliveryFailed(
            f"{self.name}: outside the messaging window (last message from the patient "
            "more than 24 h ago, or 7 days for a person's reply)"
        )

    def message_bodies(self, text: str, buttons: list[dict[str, str]]) -> list[dict[str, Any]]:
        """The Send API `message` objects for one of our messages."""
        if len(buttons) > self.QUICK_REPLIES:
            text, buttons = numbered_options(text, buttons), []
        bodies: list[dict[str, Any]] = [
            {"text": part} for part in split_text(text, self.TEXT_LIMIT)
        ]
        if buttons:
            bodies[-1]["quick_replies"] = [
                {
                    "content_type": "text",
                    "title": b["title"][: self.QUICK_REPLY_TITLE],
                    "payload": b["payload"],
                }
                for b in buttons
            ]
        return bodies

    async def deliver(
        self, message: Message, identity: ChannelIdentity, reach: Reach = Reach.FREE
    ) -> list[str]:
        kind = self.messaging_type(reach)

        async def send(body: dict[str, Any]) -> str:
            request = {"recipient": {"id": identity.external_id}, "message": body, **kind}
            message_id: str = (await self.graph_post("me/messages", request))["message_id"]
            return message_id

        bodies = self.message_bodies(message.text, message.buttons or [])
        return await send_parts(message, bodies, send)
