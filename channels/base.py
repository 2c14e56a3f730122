"""The contract every provider channel keeps, and what the channels share.

One provider = one module with one `ProviderChannel` subclass: its configuration (read from
the environment, `config.missing` names the required variables not set), how to check a
webhook call (`verify`, on the raw bytes), how to read it (`decode`, which calls the module's
pure `parse(payload) -> list[Event]`), what the provider expects as an answer (`ack`,
`handshake`) and how to send one recorded message (`deliver`). The web layer
(`web/webhooks.py`) keeps the order of those steps and the error answers the same for
every channel; recording and routing what a channel decoded is the messaging layer's
(`messaging/inbound.py`). Nothing here knows Rasa.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from core.catalog import t
from core.context import DeliveryFailed, Reach
from core.settings import Settings
from models import ChannelIdentity, DeliveryStatus, Message

log = logging.getLogger(__name__)

# What the "talk to a person" button sends: the handoff intent of the Rasa domain.
HANDOFF_PAYLOAD = "/falar_com_atendente"
# The identity detail a channel sets when it could not authenticate the sender (e-mail without
# an aligned DKIM or trusted DMARC pass): its value is the handoff reason. Such an identity is
# linked to no known patient, and its messages go to a person, never to the bot.
UNAUTHENTICATED = "unauthenticated"
_TYPED_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


# --- what a webhook call decodes into ------------------------------------------------------


@dataclass(frozen=True)
class Inbound:
    """One patient message, normalised from any provider's payload."""

    channel: str
    external_user_id: str
    provider_message_id: str
    text: str = ""
    payload: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    sent_at: datetime | None = None
    display_name: str | None = None
    phone: str | None = None
    email: str | None = None
    # Other stable ids of this person on the channel (WhatsApp wa_id and BSUID): an identity
    # known by any of them is the same identity. Kept on the identity with `identity_details`.
    aliases: dict[str, str] = field(default_factory=dict)
    # Channel facts kept on the identity for replies (e.g. the e-mail thread's headers).
    identity_details: dict[str, Any] = field(default_factory=dict)
    # Sent by a machine (e-mail Auto-Submitted): stored and shown to staff, never answered.
    automatic: bool = False


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery receipt for a message we sent; never reaches the assistant."""

    provider_message_id: str
    status: DeliveryStatus
    at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class Watermark:
    """Messenger's receipt: every message sent to this person up to `until` reached `status`."""

    external_user_id: str
    status: DeliveryStatus
    until: datetime


@dataclass(frozen=True)
class Edit:
    """The patient edited a message they sent (Telegram)."""

    provider_message_id: str
    text: str


@dataclass(frozen=True)
class Unsent:
    """The patient unsent a message (Instagram)."""

    provider_message_id: str


@dataclass(frozen=True)
class Ignored:
    """An event we acknowledge and do nothing with (reactions, typing, unknown types)."""

    kind: str


# Inbound | StatusUpdate | Watermark | Edit | Unsent | Ignored, or an event type of one channel
# (Telegram's CallbackAnswer): each is handled by its type (`messaging.inbound.Inbox.handle`).
Event = object
# Takes one event of the type it is registered for; what it returns is not used.
EventHandler = Callable[[Any], Awaitable[object]]
HandleEvents = Callable[[Sequence[Event]], Awaitable[None]]


@dataclass(frozen=True)
class Media:
    """A file a provider handed over for one attachment: its bytes as they came (their type
    is checked by `messaging.files`, never taken from here) and its name, if it had one."""

    content: bytes
    filename: str | None = None


class MediaUnavailable(Exception):
    """An attachment's file could not be had from the provider: `retryable` when trying
    later may help (network, 5xx, throttling), not when the provider refused or it is too
    large (`too_large`)."""

    def __init__(self, reason: str, *, retryable: bool = False, too_large: bool = False) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.too_large = too_large


class BadPayload(ValueError):
    """A request we cannot read (malformed JSON or form); answered with a 400."""


@dataclass(frozen=True)
class WebhookRequest:
    """What a channel may read of a webhook call: the raw bytes exactly as they arrived
    (signatures are computed over them), the headers and the query. Built by the web layer,
    so that verifying and decoding stay pure functions of the request."""

    path: str
    query_string: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # case-insensitive
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()


class ChannelConfig(Protocol):
    @property
    def missing(self) -> list[str]: ...


# --- the contract ------------------------------------------------------------------------------


class ProviderChannel(ABC):
    """One provider's webhook and sending. Subclasses set `name` and implement the abstract
    methods; the defaults fit a channel without a handshake, extra events or background
    work."""

    name: ClassVar[str]
    # Bodies above this are refused before they are read.
    max_body: ClassVar[int] = 1_000_000
    # Whether `decode` waits on the network (DNS): then it runs off the event loop.
    decodes_blocking: ClassVar[bool] = False

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self._http: aiohttp.ClientSession | None = None

    async def post(
        self,
        url: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> ProviderReply:
        """POST to the provider's API on one keep-alive session per channel and process (a
        reply reuses the connection, and its TLS handshake, that the previous one opened).
        Network failures are retryable `DeliveryFailed`s; HTTP errors come back for the
        channel to describe in the provider's terms."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=PROVIDER_TIMEOUT)
        try:
            async with self._http.post(url, json=json_body, headers=headers) as resp:
                text = await resp.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason = f"provider unreachable: {type(exc).__name__}"
            raise DeliveryFailed(reason, retryable=True) from exc
        try:
            return ProviderReply(resp.status, json.loads(text))
        except ValueError:
            return ProviderReply(resp.status, text)

    async def download(
        self,
        url: str,
        *,
        limit: int,
        headers: dict[str, str] | None = None,
        auth: aiohttp.BasicAuth | None = None,
    ) -> bytes:
        """GET a file the provider named, at most `limit` bytes (more: `MediaUnavailable`
        with `too_large`, read no further). Redirects are followed (aiohttp drops the
        credentials when one leaves the host)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=PROVIDER_TIMEOUT)
        try:
            async with self._http.get(url, headers=headers, auth=auth) as resp:
                if not 200 <= resp.status < 300:
                    retry = retryable_status(resp.status)
                    raise MediaUnavailable(f"HTTP {resp.status}", retryable=retry)
                if (resp.content_length or 0) > limit:
                    raise MediaUnavailable("larger than the limit", too_large=True)
                content = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    content += chunk
                    if len(content) > limit:
                        raise MediaUnavailable("larger than the limit", too_large=True)
                return bytes(content)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise MediaUnavailable(type(exc).__name__, retryable=True) from exc

    async def fetch_media(self, attachment: dict[str, Any], limit: int) -> Media | None:
        """The file of one parsed attachment, fetched only from where the provider said
        (its media id or URL, with the channel's credentials); None when the attachment
        carries no file (a location, a contact). Failures raise `MediaUnavailable`."""
        return None

    async def close(self) -> None:
        """Release the channel's connections, when its process stops."""
        if self._http is not None:
            await self._http.close()

    @classmethod
    @abstractmethod
    def load_config(cls, settings: Settings) -> ChannelConfig:
        """The channel's settings from `settings.channel_env`."""

    @abstractmethod
    def verify(self, request: WebhookRequest) -> bool:
        """Whether the call comes from the provider: a signature or secret over the raw bytes,
        compared in constant time."""

    @abstractmethod
    def decode(self, request: WebhookRequest) -> list[Event]:
        """Every event of the call, in order; BadPayload when the body cannot be read."""

    def ack(self) -> web.Response:
        """The answer the provider expects once every event is recorded."""
        return web.json_response({"ok": True})

    async def handshake(self, request: WebhookRequest) -> web.Response:
        """The answer to a GET on the webhook (Meta's hub.challenge)."""
        return web.json_response({"error": "method not allowed"}, status=405)

    @abstractmethod
    async def deliver(
        self, message: Message, identity: ChannelIdentity, reach: Reach = Reach.FREE
    ) -> str | Sequence[str] | None:
        """Send one recorded message as its messaging window allows (`reach`, decided by
        `messaging.windows`); the provider's id (or the ids of the parts sent now).
        Failures raise `DeliveryFailed`, saying whether to retry."""

    def sends_files(self, identity: ChannelIdentity) -> bool:
        """Whether `deliver` sends a message's files (`attachments` with a signed `link`)
        as files to this identity; if not, the patient gets the links in the text."""
        return False

    def send_lane(self, identity: ChannelIdentity) -> str:
        """Which send-rate cap (`Settings.send_rates`) a message to `identity` counts against:
        the channel's, unless the channel sends from senders with different caps."""
        return self.name

    def handlers(self) -> dict[type, EventHandler]:
        """Handlers of the channel's own event types (e.g. Telegram's callback answers)."""
        return {}

    async def run_in_background(self, handle: HandleEvents) -> None:
        """Long-running work of the channel while the web process runs (e.g. polling an IMAP
        inbox), feeding what it reads to `handle`. Returns at once when there is none."""
        return


# --- helpers the channels share ---------------------------------------------------------------


def json_object(request: WebhookRequest) -> dict[str, Any]:
    """The request's JSON object body, or BadPayload."""
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadPayload("body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise BadPayload("expected a JSON object")
    return payload


def tolerant[**P](
    kind: str, parse: Callable[P, list[Event]], *args: P.args, **kwargs: P.kwargs
) -> list[Event]:
    """`parse(*args)` for one item of a batch: an unreadable item is logged and skipped, and
    the others still count."""
    try:
        return parse(*args, **kwargs)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        log.warning("skipped a malformed %s item", kind)
        return [Ignored(f"malformed {kind}")]


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of a secret from a request; bytes, so that any character a
    caller sends compares instead of raising."""
    return hmac.compare_digest(given.encode(), expected.encode())


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs have the same scheme, host and port."""
    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc) and bool(a.netloc)


def unset(variables: dict[str, str]) -> list[str]:
    """Which of a channel's required variables (name → value) are not set."""
    return [name for name, value in variables.items() if not value]


def from_epoch(seconds: float | str | None) -> datetime | None:
    if seconds in (None, ""):
        return None
    return datetime.fromtimestamp(float(seconds), tz=UTC)


def split_text(text: str, limit: int) -> list[str]:
    """Split a long text into parts of at most `limit` characters, at a paragraph, line or
    word boundary when there is one."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = next((i for sep in ("\n\n", "\n", " ") if (i := window.rfind(sep)) > 0), limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


Part = TypeVar("Part")


async def send_parts[Part](
    message: Message, parts: Sequence[Part], send: Callable[[Part], Awaitable[str]]
) -> list[str]:
    """Send the parts of a message in order, skipping the ones the provider took in earlier
    attempts (`message.parts_sent`), so a retry never repeats a part to the patient; returns
    the provider ids of the parts sent now. A failure carries those taken before it."""
    accepted: list[str] = []
    for part in parts[message.parts_sent or 0 :]:
        try:
            accepted.append(await send(part))
        except DeliveryFailed as failure:
            failure.accepted = accepted
            raise
    return accepted


def file_links(message: Message) -> list[dict[str, Any]]:
    """The files of an outbound message, each with its signed `link` for the provider."""
    return [a for a in message.attachments or [] if isinstance(a, dict) and a.get("link")]


def numbered_options(text: str, buttons: Sequence[dict[str, str]]) -> str:
    """Buttons as typed options, for channels without buttons (SMS, e-mail)."""
    if not buttons:
        return text
    options = "\n".join(f"{n}. {button['title']}" for n, button in enumerate(buttons, 1))
    return f"{text}\n\n{options}\n\n{t('channel.reply_with_number')}".strip()


def typed_option(text: str, buttons: Sequence[dict[str, str]]) -> str | None:
    """The payload a typed reply selects among the buttons last offered: their number
    ("1" is the first) or their exact title."""
    if number := _TYPED_NUMBER.match(text or ""):
        index = int(number.group(1)) - 1
        return buttons[index]["payload"] if 0 <= index < len(buttons) else None
    wanted = (text or "").strip().casefold()
    return next((b["payload"] for b in buttons if b["title"].strip().casefold() == wanted), None)


@dataclass(frozen=True)
class ProviderReply:
    status: int
    body: Any  # parsed JSON, or the text when it is not JSON

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return retryable_status(self.status)


def retryable_status(status: int) -> bool:
    """An HTTP status that says throttled or a provider-side failure: worth trying again
    later."""
    return status in (408, 425, 429) or status >= 500


PROVIDER_TIMEOUT = aiohttp.ClientTimeout(total=15)
