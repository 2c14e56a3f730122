"""What every channel connector shares: the bot process's context, the webhook pipeline,
the handoff gate, input sanitising, typed options, bot replies through the Sender, and replay
of inbound that was never routed.

A connector's webhook stays thin (`WebhookInput.receive`): verify the raw bytes → decode into
events with a pure `parse` function → record every event → ack → `route()` each new message
in the background. Routing sends a message to Rasa only while the bot owns the conversation.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sqlalchemy import select

from handoff.actions import join_open_episode, request_handoff
from handoff.bot_api import BotApi
from handoff.catalog import t
from handoff.context import Context, DeliveryFailed
from handoff.events import HttpEventBus, message_event
from handoff.history import (
    Inbound,
    Recorded,
    latest_conversation,
    record_edit,
    record_inbound,
    record_status,
    record_watermark,
)
from handoff.logs import log_failure
from handoff.outbound import send, send_bot_reply
from handoff.verification import CONFIRM_IDENTITY, send_code
from models import (
    AuthorKind,
    Conversation,
    DeliveryStatus,
    Direction,
    Message,
    Owner,
    Priority,
    utcnow,
)
from models.db import Database
from settings import Settings

log = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
OFFERED_BUTTONS_LOOKBACK = 5
# What the "talk to a person" button sends: the handoff intent of the Rasa domain.
HANDOFF_PAYLOAD = "/falar_com_atendente"
_TYPED_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery receipt for a message we sent; never reaches Rasa."""

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


Event = Any  # Inbound | StatusUpdate | Watermark | Edit | Unsent | Ignored | channel-specific


class BadPayload(ValueError):
    """A request we cannot read (malformed JSON or form); answered with a 4xx."""


def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object body, or BadPayload."""
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadPayload("body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise BadPayload("expected a JSON object")
    return payload


def tolerant(kind: str, parse: Callable[..., list[Event]], *args: Any) -> list[Event]:
    """`parse(*args)` for one item of a batch: an unreadable item is logged and skipped, and
    the others still count."""
    try:
        return parse(*args)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        log.warning("skipped a malformed %s item", kind)
        return [Ignored(f"malformed {kind}")]


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of a secret from a request; bytes, so that any character a
    caller sends compares instead of raising."""
    return hmac.compare_digest(given.encode(), expected.encode())


def unset(variables: dict[str, str]) -> list[str]:
    """Which of a channel's required variables (name → value) are not set."""
    return [name for name, value in variables.items() if not value]


def from_epoch(seconds: float | str | None) -> datetime | None:
    if seconds in (None, ""):
        return None
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc)


def within(since: datetime | None, hours: float) -> bool:
    """Whether a provider's messaging window opened at `since` is still open."""
    return since is not None and utcnow() - since < timedelta(hours=hours)


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


async def send_parts(
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


@lru_cache(maxsize=1)
def bot_context() -> Context:
    """The one context of the Rasa process, shared by every connector Rasa instantiates."""
    from bot.channels.registry import build_senders

    settings = Settings.from_env()
    return Context(
        settings=settings,
        db=Database(settings.database_url),
        bus=HttpEventBus(settings.web_url, settings.internal_token),
        senders=build_senders(settings, in_bot_process=True),
        bot=BotApi(settings.bot_url, settings.rasa_token),
    )


def neutralize_commands(text: str) -> str:
    """Patient text must never reach Rasa as `/intent{...}` or `/restart`."""
    return text.lstrip().lstrip("/").lstrip()


def button_view(buttons: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))} for b in buttons
    ]


async def _recent_offers(ctx: Context, identity_id: int, count: int) -> list[list[dict]]:
    """The buttons of the clinic's (bot, system) latest `count` messages to this channel
    identity, newest first. The thread, not one conversation: the satisfaction question is
    asked as the human episode closes, and the answer arrives in the next conversation."""
    async with ctx.db.session() as session:
        query = (
            select(Message.buttons)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Conversation.channel_identity_id == identity_id,
                Message.direction == Direction.OUTBOUND,
                Message.author_kind.in_((AuthorKind.BOT, AuthorKind.SYSTEM)),
                Message.internal.is_(False),
            )
            .order_by(Message.id.desc())
            .limit(count)
        )
        return [buttons or [] for buttons in (await session.execute(query)).scalars()]


async def _was_offered(ctx: Context, identity_id: int, payload: str) -> bool:
    """Only payloads of buttons the clinic (bot, reminders) recently showed this patient on
    this channel are trusted."""
    offers = await _recent_offers(ctx, identity_id, OFFERED_BUTTONS_LOOKBACK)
    return any(button.get("payload") == payload for buttons in offers for button in buttons)


async def _last_offered_buttons(ctx: Context, identity_id: int) -> list[dict[str, str]]:
    """The buttons of the clinic's latest message, if it had any: what a typed "1" answers."""
    return next(iter(await _recent_offers(ctx, identity_id, 1)), [])


def _unreadable(message: Message) -> bool:
    """Files, audio, stickers or a location without any text: nothing the bot can read."""
    return bool(message.attachments) and not message.text.strip() and not message.payload


class ChannelInput(InputChannel):
    """Base of our connectors: recording, the handoff gate and replay, in one place."""

    # Inbound whose routing failed while the process kept running (Rasa briefly down) is
    # routed again by a sweep every `replay_every` seconds, once recorded more than
    # `replay_after` ago: by then whichever process recorded it is no longer routing it.
    replay_every: ClassVar[float] = 30.0
    replay_after: ClassVar[timedelta] = timedelta(minutes=2)

    def __init__(self, ctx: Context | None = None) -> None:
        self._ctx = ctx
        self._tasks: set[asyncio.Task] = set()
        self._patient_locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._routing: set[int] = set()
        self._sweeper: asyncio.Task | None = None

    @property
    def ctx(self) -> Context:
        if self._ctx is None:
            self._ctx = bot_context()
        return self._ctx

    async def record(self, inbound: Inbound) -> Recorded | None:
        """Record before acknowledging; None for a delivery seen before."""
        async with self.ctx.db.session() as session:
            recorded = await record_inbound(session, inbound)
        if recorded is not None:
            # Staff screens hear of it after the acknowledgement: a slow web process must not
            # delay the answer providers time out on.
            self.later(self.ctx.bus.publish(message_event(recorded.message, recorded.conversation)))
        return recorded

    def later(self, work: Awaitable[Any]) -> None:
        """Run after the webhook answered; the task is kept so it is not collected mid-way.
        A failed routing leaves its message unprocessed, for the next sweep (`replay_on`)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log_failure(log, error, "%s: background work failed", self.name())

    async def drain(self) -> None:
        """Wait for the work webhooks left running in the background."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def route_later(
        self, message_id: int, on_new_message: OnNewMessage, patient_id: int | None = None
    ) -> None:
        """Route in the background. With the patient known, the routing task takes the
        patient's lock before it first waits, so one patient's messages reach the bot in the
        order they were recorded."""
        self.later(self.route(message_id, on_new_message, patient_id))

    async def route(
        self, message_id: int, on_new_message: OnNewMessage, patient_id: int | None = None
    ) -> None:
        """Hand a recorded message to Rasa if the bot owns its conversation, once."""
        self._routing.add(message_id)
        try:
            await self._route(message_id, on_new_message, patient_id)
        finally:
            self._routing.discard(message_id)

    async def _route(
        self, message_id: int, on_new_message: OnNewMessage, patient_id: int | None
    ) -> None:
        if patient_id is None:
            async with self.ctx.db.session() as session:
                patient_id = (await session.get(Message, message_id)).patient_id
        async with self._patient_locks[patient_id]:
            # Read under the lock: the previous message may have handed the conversation off.
            async with self.ctx.db.session() as session:
                message = await session.get(Message, message_id)
                conversation = await session.get(Conversation, message.conversation_id)
            if message.processed_at is not None:
                return
            # A patient already with (or waiting for) a person on another channel stays
            # with them: this conversation joins that episode instead of reaching the bot.
            with_bot = conversation.owner == Owner.BOT and not await join_open_episode(
                self.ctx, conversation.id
            )
            if with_bot and _unreadable(message):
                await self._offer_person(conversation.id)
            elif with_bot:
                await on_new_message(await self._user_message(message, conversation))
            await self._mark_processed(message_id)

    async def _offer_person(self, conversation_id: int) -> None:
        """The bot cannot read files yet: say so and offer a person, without asking Rasa."""
        await send(
            self.ctx,
            conversation_id,
            text=t("channel.unreadable"),
            author_kind=AuthorKind.SYSTEM,
            buttons=[{"title": t("channel.talk_to_person"), "payload": HANDOFF_PAYLOAD}],
        )

    async def _user_message(self, message: Message, conversation: Conversation) -> UserMessage:
        text = neutralize_commands(message.text)
        payload = message.payload
        if payload is None:
            payload = typed_option(
                message.text,
                await _last_offered_buttons(self.ctx, conversation.channel_identity_id),
            )
        if payload and await _was_offered(self.ctx, conversation.channel_identity_id, payload):
            text = payload
        return UserMessage(
            text=text,
            output_channel=self.get_output_channel(),
            sender_id=str(message.patient_id),
            input_channel=self.name(),
            message_id=str(message.id),
            metadata={"conversation_id": conversation.id, "message_id": message.id},
        )

    async def handle(self, events: Sequence[Event], on_new_message: OnNewMessage) -> None:
        """Record every event of a delivery (before it is acknowledged) and route new
        messages in the background."""
        for event in events:
            handler = self.handlers().get(type(event))
            if handler is None:
                log.warning("%s: no handler for %s", self.name(), type(event).__name__)
                continue
            await handler(event, on_new_message)

    def handlers(self) -> dict[type, Callable[[Any, OnNewMessage], Awaitable[None]]]:
        """Event type → handler; connectors add their own (e.g. Telegram callback answers)."""
        return {
            Inbound: self._on_inbound,
            StatusUpdate: self._on_status,
            Watermark: self._on_watermark,
            Edit: self._on_edit,
            Unsent: self._on_unsent,
            Ignored: self._on_ignored,
        }

    async def _on_inbound(self, inbound: Inbound, on_new_message: OnNewMessage) -> None:
        recorded = await self.record(inbound)
        if recorded is not None and not inbound.automatic:
            self.route_later(recorded.message.id, on_new_message, recorded.message.patient_id)

    async def _on_status(self, update: StatusUpdate, _on_new_message: OnNewMessage) -> None:
        async with self.ctx.db.session() as session:
            message = await record_status(
                session,
                self.name(),
                update.provider_message_id,
                update.status,
                at=update.at,
                error=update.error,
            )
            changed = [message] if message is not None else []
        await self._publish(changed)

    async def _on_watermark(self, mark: Watermark, _on_new_message: OnNewMessage) -> None:
        async with self.ctx.db.session() as session:
            changed = await record_watermark(
                session, self.name(), mark.external_user_id, mark.status, mark.until
            )
        await self._publish(changed)

    async def _on_edit(self, edit: Edit, _on_new_message: OnNewMessage) -> None:
        async with self.ctx.db.session() as session:
            message = await record_edit(session, self.name(), edit.provider_message_id, edit.text)
        await self._publish([message] if message is not None else [])

    async def _on_unsent(self, unsent: Unsent, _on_new_message: OnNewMessage) -> None:
        async with self.ctx.db.session() as session:
            message = await record_edit(
                session, self.name(), unsent.provider_message_id, t("channel.unsent")
            )
            if message is not None:
                message.attachments = []
        await self._publish([message] if message is not None else [])

    async def _on_ignored(self, ignored: Ignored, _on_new_message: OnNewMessage) -> None:
        log.info("%s: ignored a %s event", self.name(), ignored.kind)

    async def _publish(self, messages: Sequence[Message]) -> None:
        """Push changed messages to staff screens, after the acknowledgement."""
        for message in messages:
            async with self.ctx.db.session() as session:
                conversation = await session.get(Conversation, message.conversation_id)
            self.later(self.ctx.bus.publish(message_event(message, conversation)))

    async def _mark_processed(self, message_id: int) -> None:
        async with self.ctx.db.session() as session:
            message = await session.get(Message, message_id)
            message.processed_at = utcnow()

    async def replay_unprocessed(
        self, on_new_message: OnNewMessage, recorded_before: datetime | None = None
    ) -> None:
        """Route what was recorded but never routed: at start-up, whatever a previous process
        left; in a sweep, what was recorded before `recorded_before` and is not being
        routed by this process."""
        async with self.ctx.db.session() as session:
            query = (
                select(Message.id)
                .where(
                    Message.channel == self.name(),
                    Message.direction == Direction.INBOUND,
                    Message.processed_at.is_(None),
                )
                .order_by(Message.id)
            )
            if recorded_before is not None:
                query = query.where(Message.recorded_at <= recorded_before)
            found = (await session.execute(query)).scalars().all()
        pending = [message_id for message_id in found if message_id not in self._routing]
        if pending:
            log.info("%s: replaying %d unrouted inbound messages", self.name(), len(pending))
        for message_id in pending:
            try:
                await self.route(message_id, on_new_message)
            except Exception as exc:  # e.g. Rasa still down: the next sweep tries again
                log_failure(log, exc, "%s: replay of message %s failed", self.name(), message_id)

    def replay_on(
        self,
        bp: Blueprint,
        on_new_message: OnNewMessage,
        enabled: Callable[[], bool] = lambda: True,
    ) -> None:
        """Replay at server start, then sweep periodically while the server runs."""

        @bp.listener("after_server_start")
        async def replay(_app: Any, _loop: Any) -> None:
            if enabled():
                await self.replay_unprocessed(on_new_message)
                self._sweeper = asyncio.create_task(self._sweep_forever(on_new_message))

        @bp.listener("before_server_stop")
        async def stop_sweeping(_app: Any, _loop: Any) -> None:
            if self._sweeper is not None:
                self._sweeper.cancel()

    async def _sweep_forever(self, on_new_message: OnNewMessage) -> None:
        while True:
            await asyncio.sleep(self.replay_every)
            try:
                await self.replay_unprocessed(on_new_message, utcnow() - self.replay_after)
            except Exception as exc:  # e.g. the database is down: the next sweep tries again
                log_failure(log, exc, "%s: the sweep of unrouted messages failed", self.name())


class ChannelSender(OutputChannel):
    """Rasa's output side of a channel: every bot reply is recorded in the shared history
    and delivered by `deliver`, the channel's provider call."""

    def __init__(self, ctx_factory: Callable[[], Context] = bot_context) -> None:
        self._ctx_factory = ctx_factory

    @classmethod
    def name(cls) -> str:
        raise NotImplementedError

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Records and delivers a bot reply, then carries out what the action asked of the
        bot process in its custom part: a one-time code to send (`identity_code`; if it
        cannot go, the patient is told and handed to a person) or a handoff."""
        ctx = self._ctx_factory()
        patient_id = int(recipient_id)
        text = message.get("text") or ""
        buttons = button_view(message.get("buttons") or message.get("quick_replies") or [])
        if text or buttons:
            await send_bot_reply(ctx, patient_id, self.name(), text, buttons)
        custom = message.get("custom") or {}
        handoff = custom.get("handoff")
        code = custom.get("identity_code")
        if code is not None and not await send_code(ctx, int(code["claim"]), patient_id):
            await send_bot_reply(ctx, patient_id, self.name(), t("identity.code_not_sent"), [])
            handoff = {"reason": CONFIRM_IDENTITY}
        if handoff is not None:
            await self._hand_off(ctx, patient_id, handoff)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})

    async def _hand_off(self, ctx: Context, patient_id: int, handoff: dict[str, Any]) -> None:
        async with ctx.db.session() as session:
            conversation = await latest_conversation(session, patient_id, self.name())
        if conversation is None:
            return
        priority = Priority[str(handoff.get("priority", "normal")).upper()]
        await request_handoff(
            ctx, conversation.id, reason=str(handoff.get("reason", "pedido")), priority=priority
        )


class ProviderSender(ChannelSender):
    """The Sender of a provider channel, built from the channel's configuration."""

    CHANNEL: ClassVar[str]

    def __init__(self, config: Any, ctx_factory: Callable[[], Context] = bot_context) -> None:
        super().__init__(ctx_factory)
        self.config = config

    @classmethod
    def name(cls) -> str:
        return cls.CHANNEL


class WebhookInput(ChannelInput):
    """A provider's webhook at `/webhooks/<name>/webhook`: every connector but the widget.

    Subclasses say how to check a request (`verify`, on the raw bytes), how to read it
    (`decode`, which calls the channel's pure `parse`) and what the provider expects as an
    acknowledgement; this class keeps the order of the steps and the error answers the same
    everywhere.
    """

    CHANNEL: ClassVar[str]
    # Bodies above this are refused before any parsing (Sanic's own limit is 100 MB).
    max_body: ClassVar[int] = 1_000_000

    @classmethod
    def name(cls) -> str:
        return cls.CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WebhookInput:
        """Rasa's hook: our connectors read their settings from the environment instead."""
        return cls()

    @classmethod
    def load_config(cls, settings: Settings) -> Any:
        """The channel's settings; `config.missing` names the required variables not set."""
        raise NotImplementedError

    @property
    def config(self) -> Any:
        return self.load_config(self.ctx.settings)

    def verify(self, request: Request) -> bool:
        raise NotImplementedError

    def decode(self, request: Request) -> list[Event]:
        raise NotImplementedError

    def ack(self) -> response.HTTPResponse:
        return response.json({"ok": True})

    async def handshake(self, request: Request) -> response.HTTPResponse:
        return response.json({"error": "method not allowed"}, status=405)

    def get_output_channel(self) -> OutputChannel:
        return self.ctx.senders[self.name()]

    def extend(self, bp: Blueprint, on_new_message: OnNewMessage) -> None:
        """Extra routes or listeners of one channel (e.g. the e-mail IMAP poller)."""

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        bp = Blueprint(f"{self.name()}_webhook", url_prefix=f"/webhooks/{self.name()}")
        self.replay_on(bp, on_new_message, enabled=lambda: not self.config.missing)

        @bp.route("/webhook", methods=["GET"])
        async def handshake(request: Request) -> response.HTTPResponse:
            if self.config.missing:
                return _not_configured(self.name())
            return await self.handshake(request)

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> response.HTTPResponse:
            return await self.receive(request, on_new_message)

        self.extend(bp, on_new_message)
        return bp

    async def receive(
        self, request: Request, on_new_message: OnNewMessage
    ) -> response.HTTPResponse:
        if self.config.missing:
            return _not_configured(self.name())
        if len(request.body or b"") > self.max_body:
            return response.json({"error": "payload too large"}, status=413)
        if not self.verify(request):
            log.warning("%s: refused a request with a missing or bad signature", self.name())
            return response.json({"error": "invalid signature"}, status=403)
        try:
            events = self.decode(request)
        except BadPayload as exc:
            log.warning("%s: refused an unreadable request: %s", self.name(), exc)
            return response.json({"error": str(exc)}, status=400)
        try:
            await self.handle(events, on_new_message)
        except Exception as exc:  # e.g. the database is down: the provider retries
            log_failure(log, exc, "%s: could not record a delivery", self.name())
            return response.json({"error": "temporarily unavailable, retry later"}, status=503)
        return self.ack()


def _not_configured(name: str) -> response.HTTPResponse:
    # Fail closed: without its secrets a channel can authenticate nothing.
    return response.json({"error": f"the {name} channel is not configured"}, status=403)


@dataclass(frozen=True)
class ProviderReply:
    status: int
    body: Any  # parsed JSON, or the text when it is not JSON

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Throttled or a provider-side failure: worth trying again later."""
        return self.status in (408, 425, 429) or self.status >= 500


PROVIDER_TIMEOUT = aiohttp.ClientTimeout(total=15)


async def call_provider(
    url: str,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    auth: aiohttp.BasicAuth | None = None,
) -> ProviderReply:
    """POST to a provider's API. Network failures are retryable `DeliveryFailed`s; HTTP
    errors come back for the Sender to describe in the provider's terms."""
    try:
        async with (
            aiohttp.ClientSession(timeout=PROVIDER_TIMEOUT) as http,
            http.post(url, json=json_body, data=form, headers=headers, auth=auth) as resp,
        ):
            text = await resp.text()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise DeliveryFailed(f"provider unreachable: {type(exc).__name__}", retryable=True) from exc
    try:
        return ProviderReply(resp.status, json.loads(text))
    except ValueError:
        return ProviderReply(resp.status, text)
