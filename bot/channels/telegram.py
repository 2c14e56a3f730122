"""Telegram through the Bot API: a webhook set with a secret token, `sendMessage` with inline
keyboards. Updates are read with python-telegram-bot's types; nothing here calls `getMe`.

Env: TELEGRAM_BOT_TOKEN, TELEGRAM_SECRET_TOKEN (the `secret_token` given to setWebhook),
TELEGRAM_API_URL.

Private chats only: the chat id is the person's identity. Sharing one's own contact (the
phone Telegram verified) joins the patient with the one known by that phone elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sanic.request import Request
from telegram import Message as TelegramMessage
from telegram import Update

from bot.channels.base import (
    BadPayload,
    Edit,
    Event,
    Ignored,
    OnNewMessage,
    ProviderSender,
    WebhookInput,
    call_provider,
    json_object,
    same_secret,
    send_parts,
    split_text,
    tolerant,
    unset,
)
from handoff.context import DeliveryFailed
from handoff.history import Inbound
from handoff.identity import normalize_phone
from handoff.logs import without_numbers
from models import ChannelIdentity, Message
from settings import Settings

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

    def method_url(self, method: str) -> str:
        return f"{self.api_url}/bot{self.bot_token}/{method}"


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
            if getattr(item, "mime_type", None):
                kept["mime_type"] = item.mime_type
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


def _button_title(message: Any, data: str) -> str | None:
    markup = getattr(message, "reply_markup", None)
    for row in getattr(markup, "inline_keyboard", None) or ():
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


def _callback(update: Update) -> list[Event]:
    query = update.callback_query
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
        return _callback(update)
    kinds = [key for key in raw if key != "update_id"]
    return [Ignored(kinds[0] if kinds else "empty update")]


def parse(raw: dict[str, Any]) -> list[Event]:
    """One Telegram Update as events."""
    return tolerant("update", _update, raw)


def _keyboard(buttons: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    rows = []
    for n, button in enumerate(buttons, 1):
        data = button["payload"]
        if len(data.encode()) > CALLBACK_DATA_BYTES:
            data = f"{OPTION_PREFIX}{n}"
        rows.append([{"text": button["title"], "callback_data": data}])
    return rows


class TelegramSender(ProviderSender):
    CHANNEL = CHANNEL
    config: TelegramConfig

    async def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await call_provider(self.config.method_url(method), json_body=body)
        answer = reply.body if isinstance(reply.body, dict) else {}
        if reply.ok and answer.get("ok"):
            return answer
        reason = answer.get("description") or str(reply.body)[:200]
        # A 429 says in parameters.retry_after how many seconds to wait before trying again.
        retry_after = (answer.get("parameters") or {}).get("retry_after")
        raise DeliveryFailed(
            f"telegram: HTTP {reply.status}, {reason}",
            retryable=reply.retryable,
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        )

    async def deliver(self, message: Message, identity: ChannelIdentity) -> list[str]:
        chat_id = identity.external_id
        texts = split_text(message.text, TEXT_LIMIT)
        bodies: list[dict[str, Any]] = [{"chat_id": chat_id, "text": text} for text in texts]
        if message.buttons:
            bodies[-1]["reply_markup"] = {"inline_keyboard": _keyboard(message.buttons)}

        async def send(body: dict[str, Any]) -> str:
            answer = await self.call("sendMessage", body)
            return f"{chat_id}:{answer['result']['message_id']}"

        return await send_parts(message, bodies, send)


class TelegramInput(WebhookInput):
    CHANNEL = CHANNEL

    @classmethod
    def load_config(cls, settings: Settings) -> TelegramConfig:
        env = settings.channel_env
        return TelegramConfig(
            bot_token=env.get("TELEGRAM_BOT_TOKEN", ""),
            secret_token=env.get("TELEGRAM_SECRET_TOKEN", ""),
            api_url=env.get("TELEGRAM_API_URL", DEFAULT_API_URL).rstrip("/"),
        )

    def verify(self, request: Request) -> bool:
        token = request.headers.get("X-Telegram-Bot-Api-Secret-Token") or ""
        return bool(token) and same_secret(token, self.config.secret_token)

    def decode(self, request: Request) -> list[Event]:
        raw = json_object(request)
        if not isinstance(raw.get("update_id"), int):
            raise BadPayload("expected an Update with an update_id")
        return parse(raw)

    def handlers(self) -> dict[type, Callable[[Any, OnNewMessage], Awaitable[None]]]:
        return {**super().handlers(), CallbackAnswer: self._on_callback}

    async def _on_callback(self, answer: CallbackAnswer, _on_new_message: OnNewMessage) -> None:
        self.later(self._answer_callback(answer.query_id))

    async def _answer_callback(self, query_id: str) -> None:
        """Stops the button's spinner on the patient's screen; failing that is harmless."""
        sender = self.get_output_channel()
        try:
            await sender.call("answerCallbackQuery", {"callback_query_id": query_id})
        except DeliveryFailed as failure:
            log.warning("answerCallbackQuery failed: %s", without_numbers(failure.reason))
