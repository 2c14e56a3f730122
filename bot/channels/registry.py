"""The Sender of every channel, for whichever process needs to deliver messages.

A channel whose secrets are not set is disabled, said once per process in the log; what is
sent on it goes to a console outbox (`var/outbox/<channel>.jsonl`) instead of a provider, so
the clinic runs on one machine without any account.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.channels.base import ChannelSender, ProviderSender, WebhookInput, bot_context
from bot.channels.email import EmailInput, EmailSender
from bot.channels.instagram import InstagramInput, InstagramSender
from bot.channels.messenger import MessengerInput, MessengerSender
from bot.channels.telegram import TelegramInput, TelegramSender
from bot.channels.twilio import TwilioInput, TwilioSender
from bot.channels.webchat import Sockets, WebchatSender
from bot.channels.whatsapp import WhatsAppInput, WhatsAppSender
from handoff.context import Context, Sender
from models import ChannelIdentity, Message, utcnow
from settings import VAR, Settings

log = logging.getLogger(__name__)

OUTBOX = VAR / "outbox"

# Each provider channel: its connector (which reads the configuration) and its Sender.
PROVIDER_CHANNELS: list[tuple[type[WebhookInput], type[ProviderSender]]] = [
    (WhatsAppInput, WhatsAppSender),
    (TwilioInput, TwilioSender),
    (MessengerInput, MessengerSender),
    (InstagramInput, InstagramSender),
    (TelegramInput, TelegramSender),
    (EmailInput, EmailSender),
]


class OutboxSender(ChannelSender):
    """A disabled channel's outbound: one JSON line per message in the outbox file, and a
    log line without the text."""

    def __init__(
        self,
        channel: str,
        folder: Path = OUTBOX,
        ctx_factory: Callable[[], Context] = bot_context,
    ) -> None:
        super().__init__(ctx_factory)
        self.channel = channel
        self.path = folder / f"{channel}.jsonl"

    def name(self) -> str:  # type: ignore[override]  # one class serves every channel
        return self.channel

    async def deliver(self, message: Message, identity: ChannelIdentity) -> str | None:
        line = {
            "at": utcnow().isoformat(),
            "message_id": message.id,
            "to": identity.external_id,
            "author_kind": str(message.author_kind),
            "text": message.text,
            "buttons": message.buttons or [],
        }
        await asyncio.to_thread(self._append, json.dumps(line, ensure_ascii=False))
        log.info("%s is disabled: message %s written to %s", self.channel, message.id, self.path)
        return f"outbox-{message.id}"

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as outbox:
            outbox.write(line + "\n")


def build_senders(
    settings: Settings,
    *,
    in_bot_process: bool,
    ctx_factory: Callable[[], Context] = bot_context,
    outbox: Path = OUTBOX,
) -> dict[str, Sender]:
    """In the Rasa process the widget's sockets are local; elsewhere webchat delivery goes
    through the Rasa process. `ctx_factory` is the context bot replies are recorded in."""
    senders: dict[str, Any] = {
        "webchat": WebchatSender(
            Sockets() if in_bot_process else None,
            settings.bot_url,
            settings.internal_token,
            ctx_factory,
        ),
    }
    for connector, sender in PROVIDER_CHANNELS:
        config = connector.load_config(settings)
        if config.missing:
            disabled = OutboxSender(connector.name(), outbox, ctx_factory)
            log.info(
                "%s disabled (%s not set): outbound goes to %s",
                connector.name(),
                ", ".join(config.missing),
                disabled.path,
            )
            senders[connector.name()] = disabled
        else:
            senders[connector.name()] = sender(config, ctx_factory)
    return senders
