"""Telegram through the Bot API: a webhook set with a secret token, `sendMessage` with inline
keyboards. Updates are read and sent with python-telegram-bot (`Update.de_json`, one
`telegram.Bot` per channel); nothing here calls `getMe`.

Env: TELEGRAM_BOT_TOKEN, TELEGRAM_SECRET_TOKEN (the `secret_token` given to setWebhook),
TELEGRAM_API_URL.

Private chats only: the chat id is the person's identity. Sharing one's own contact (the
phone Telegram verified) joins the patient with the one known by that phone elsewhere.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MaybeInaccessibleMessage,
    Update,
)
from telegram import Message as TelegramMessage
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest, RequestData

from channels.base import (
    PROVIDER_TIMEOUT,
    BadPayload,
    Edit,
    Event,
    EventHandler,
    Ignored,
    Inbound,
    Media,
    MediaUnavailable,
    ProviderChannel,
    WebhookRequest,
    json_object,
    same_secret,
    send_parts,
    split_text,
    tolerant,
    unset,
)
from core.contacts import normalize_phone
from core.context import DeliveryFailed, Reach
from core.logs import without_numbers
from core.settings import Settings
from models import ChannelIdentity, Message

log = logging.getLogger(__name__)

CHANNEL = "telegram"
DEFAULT_API_URL = "https://api.telegram.org"
TEXT_LIMIT = 4096
CALLBACK_DATA_BYTES = 64
# Callback data for a button whose payload is too long for Telegram: the option's number,
# which the typed-option mapping turns back into the payload.
OPTION_PREFIX = "option:"


@dataclass(frozen=True)
class TelegramConfig:
    bot_token: str
    secret_token: str
    api_url: str

    @property
    def missing(self) -> list[str]:
        return unset(
            {"TELEGRAM_BOT_TOKEN": self.bot_token, "TELEGRAM_SECRET_TOKEN": self.secret_token}
        )


@dataclass(frozen=True)
class CallbackAnswer:
    """A button tap Telegram waits to see answered (answerCallbackQuery)."""

    query_id: str


def _message_id(message: TelegramMessage) -> str:
    return f"{message.chat.id}:{message.message_id}"


def _attachments(message: TelegramMessage) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if message.photo:  # several sizes of one picture: keep the largest
        largest = max(message.photo, key=lambda size: size.width * size.height)
        found.append({"type": "image", "file_id": largest.file_id})
    media = {
        "document": message.document,
        "audio": message.audio or message.voice,
        "video": message.video or message.video_note,
        "sticker": message.sticker,
    }
    for kind, item in media.items():
        if item is not None:
            kept = {"type": kind, "file_id": item.file_id}
            # Video notes and stickers have no MIME type.
            if mime_type := getattr(item, "mime_type", None):
                kept["mime_type"] = mime_type
            found.append(kept)
    if message.location:
        location = message.location
        found.append(
            {"type": "location", "latitude": location.latitude, "longitude": location.longitude}
        )
    return found


def _message(message: TelegramMessage) -> list[Event]:
    if message.chat.type != "private":
        return [Ignored(f"{message.chat.type} chat message")]
    sender = message.from_user
    text, phone = message.text or message.caption or "", None
    attachments = _attachments(message)
    contact = message.contact
    if contact and sender and contact.user_id == sender.id:
        # The patient shared their own number: what they "say" is that phone.
        phone = normalize_phone(contact.phone_number)
        text = phone or ""
    elif contact:
        attachments.append({"type": "contact"})
    return [
        Inbound(
            channel=CHANNEL,
            external_user_id=str(message.chat.id),
            provider_message_id=_message_id(message),
            text=text,
            attachments=attachments,
            sent_at=message.date,
            display_name=sender.full_name if sender else None,
            phone=phone,
        )
    ]


def _button_title(message: MaybeInaccessibleMessage | None, data: str) -> str | None:
    # An inaccessible message (too old, deleted) carries no keyboard.
    markup = message.reply_markup if isinstance(message, TelegramMessage) else None
    for row in markup.inline_keyboard if markup is not None else ():
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


def _callback(query: CallbackQuery) -> list[Event]:
    data = query.data or ""
    chat_id = query.message.chat.id if query.message else query.from_user.id
    title = _button_title(query.message, data) or data
    payload = None if data.startswith(OPTION_PREFIX) else data
    return [
        Inbound(
            channel=CHANNEL,
            external_user_id=str(chat_id),
            provider_message_id=f"callback:{query.id}",
            text=title,
            payload=payload,
            display_name=query.from_user.full_name,
        ),
        CallbackAnswer(query.id),
    ]


def _update(raw: dict[str, Any]) -> list[Event]:
    update = Update.de_json(raw, None)
    if update.message:
        return _message(update.message)
    if update.edited_message:
        edited = update.edited_message
        return [Edit(_message_id(edited), edited.text or edited.caption or "")]
    if update.callback_query:
        return _callback(update.callback_query)
    kinds = [key for key in raw if key != "update_id"]
    return [Ignored(kinds[0] if kinds else "empty update")]


def parse(raw: dict[str, Any]) -> list[Event]:
    """One Telegram Update as events."""
    return tolerant("update", _update, raw)


# --- sending -------------------------------------------------------------------------------

# The HTTP status behind each of python-telegram-bot's errors, for the reason staff read.
# Network failures and 5xx answers (NetworkError) carry none.
HTTP_STATUS: list[tuple[type[TelegramError], int]] = [
    (RetryAfter, 429),
    (Forbidden, 403),
    (ChatMigrated, 400),
    (BadRequest, 400),
    (InvalidToken, 401),  # or 404: Telegram's description says which
    (Conflict, 409),
]


def _keyboard(buttons: list[dict[str, str]]) -> InlineKeyboardMarkup:
    """One button per row; a payload over Telegram's 64-byte `callback_data` is sent as the
    option's number."""
    rows = []
    for n, button in enumerate(buttons, 1):
        data = button["payload"]
        if len(data.encode()) > CALLBACK_DATA_BYTES:
            data = f"{OPTION_PREFIX}{n}"
        rows.append([InlineKeyboardButton(button["title"], callback_data=data)])
    return InlineKeyboardMarkup(rows)


def _failure(error: TelegramError) -> DeliveryFailed:
    """A Bot API failure in Telegram's terms. Throttling (not before its `retry_after`),
    timeouts, network failures and 5xx answers are retried; the rest (blocked by the user,
    chat not found...) is final."""
    status = next((code for kind, code in HTTP_STATUS if isinstance(error, kind)), None)
    reason = f"telegram: HTTP {status}, {error}" if status else f"telegram: {error}"
    if isinstance(error, RetryAfter):
        return DeliveryFailed(reason, retryable=True, retry_after=_seconds(error.retry_after))
    retryable = isinstance(error, NetworkError) and not isinstance(error, BadRequest)
    return DeliveryFailed(reason, retryable=retryable)


def _seconds(wait: float | timedelta) -> float:
    """python-telegram-bot 22 gives `retry_after` in seconds, or as a timedelta once
    PTB_TIMEDELTA opts in to its next major version."""
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


class JsonRequest(BaseRequest):
    """python-telegram-bot's transport on aiohttp, as every other provider call here: a JSON
    POST per Bot API call (the Bot API takes JSON; the default transport sends forms) within
    the providers' timeout. It replaces the default httpx transport, whose logger writes
    every request URL — with the bot token in it — at INFO."""

    @property
    def read_timeout(self) -> float | None:
        return PROVIDER_TIMEOUT.total

    async def initialize(self) -> None:
        """Nothing to open: one session per call."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        body = request_data.parameters if request_data else {}
        try:
            async with (
                aiohttp.ClientSession(timeout=PROVIDER_TIMEOUT) as http,
                http.request(method, url, json=body) as resp,
            ):
                payload = await resp.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            # Only the type: an aiohttp error's text may quote the URL, and so the token.
            raise NetworkError(f"aiohttp {type(exc).__name__}") from exc
        if resp.status >= 300 and not isinstance(_json(payload), dict):
            # python-telegram-bot reads an error answer as the Bot API's error object and
            # crashes on other JSON (a gateway's "Service Unavailable"): give it that shape.
            text = payload.decode(errors="replace")[:200]
            payload = json.dumps({"ok": False, "description": text}).encode()
        return resp.status, payload


def _json(payload: bytes) -> object:
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _keep_the_token_out_of_logs() -> None:
    """python-telegram-bot logs the Bot API URL, which holds the token, and every call's
    parameters (patients' texts) at DEBUG: its loggers say only warnings, whatever the
    process's level."""
    logging.getLogger("telegram").setLevel(logging.WARNING)


class TelegramChannel(ProviderChannel):
    name = CHANNEL
    config: TelegramConfig

    def __init__(self, config: TelegramConfig) -> None:
        super().__init__(config)
        _keep_the_token_out_of_logs()
        transport = JsonRequest()
        # Never initialised: that would call getMe, which sending does not need.
        self.bot = Bot(
            config.bot_token,
            base_url=f"{config.api_url}/bot{{token}}",
            base_file_url=f"{config.api_url}/file/bot{{token}}",
            request=transport,
            get_updates_request=transport,
        )

    @classmethod
    def load_config(cls, settings: Settings) -> TelegramConfig:
        env = settings.channel_env
        return TelegramConfig(
            bot_token=env.get("TELEGRAM_BOT_TOKEN", ""),
            secret_token=env.get("TELEGRAM_SECRET_TOKEN", ""),
            api_url=env.get("TELEGRAM_API_URL", DEFAULT_API_URL).rstrip("/"),
        )

    def verify(self, request: WebhookRequest) -> bool:
        token = request.headers.get("X-Telegram-Bot-Api-Secret-Token") or ""
        return bool(token) and same_secret(token, self.config.secret_token)

    def decode(self, request: WebhookRequest) -> list[Event]:
        raw = json_object(request)
        if not isinstance(raw.get("update_id"), int):
            raise BadPayload("expected an Update with an update_id")
        return parse(raw)

    def handlers(self) -> dict[type, EventHandler]:
        return {CallbackAnswer: self._answer_callback}

    async def _answer_callback(self, answer: CallbackAnswer) -> None:
        """Stops the button's spinner on the patient's screen; failing that is harmless."""
        try:
            await self.bot.answer_callback_query(answer.query_id)
        except TelegramError as error:
            log.warning("answerCallbackQuery failed: %s", without_numbers(str(error)))

    async def fetch_media(self, attachment: dict[str, Any], limit: int) -> Media | None:
        """getFile turns the update's file_id into a path on the Bot API's file server,
        read with the bot's token."""
        file_id = attachment.get("file_id")
        if not file_id:
            return None
        try:
            found = await self.bot.get_file(str(file_id))
        except TelegramError as error:
            raise MediaUnavailable(type(error).__name__, retryable=True) from error
        if not found.file_path:
            raise MediaUnavailable("getFile gave no file path")
        return Media(await self.download(found.file_path, limit=limit))

    async def deliver(
        self, message: Message, identity: ChannelIdentity, reach: Reach = Reach.FREE
    ) -> list[str]:
        chat_id = identity.external_id
        parts: list[dict[str, Any]] = [
            {"text": text} for text in split_text(message.text, TEXT_LIMIT)
        ]
        if message.buttons:
            parts[-1]["reply_markup"] = _keyboard(message.buttons)

        async def send(part: dict[str, Any]) -> str:
            try:
                sent = await self.bot.send_message(chat_id, **part)
            except TelegramError as error:
                raise _failure(error) from error
            return f"{chat_id}:{sent.message_id}"

        return await send_parts(message, parts, send)
