"""Every channel the platform speaks, and the one sender of each.

`PROVIDERS` lists the provider channels; those whose secrets are set are enabled (their
webhooks answer, their `deliver` sends), the others are disabled — said once per process in
the log — and what is sent on them goes to the console outbox. The site widget is always on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from channels.base import ProviderChannel
from channels.email import EmailChannel
from channels.instagram import InstagramChannel
from channels.messenger import MessengerChannel
from channels.outbox import OUTBOX, OutboxSender
from channels.telegram import TelegramChannel
from channels.twilio import TwilioChannel
from channels.webchat import CHANNEL as WEBCHAT
from channels.webchat import Sockets, WebchatSender
from channels.whatsapp import WhatsAppChannel
from core.context import Sender
from core.settings import Settings

log = logging.getLogger(__name__)

PROVIDERS: list[type[ProviderChannel]] = [
    WhatsAppChannel,
    TwilioChannel,
    MessengerChannel,
    InstagramChannel,
    TelegramChannel,
    EmailChannel,
]


def enabled_channels(settings: Settings) -> dict[str, ProviderChannel]:
    """The provider channels whose secrets are set, by name."""
    enabled: dict[str, ProviderChannel] = {}
    for provider in PROVIDERS:
        config = provider.load_config(settings)
        if config.missing:
            log.info(
                "%s disabled (%s not set): outbound goes to the console outbox",
                provider.name,
                ", ".join(config.missing),
            )
        else:
            enabled[provider.name] = provider(config)
    return enabled


def build_senders(
    settings: Settings,
    channels: dict[str, ProviderChannel],
    *,
    widget_sockets: Sockets | None,
    outbox: Path = OUTBOX,
) -> dict[str, Sender]:
    """The sender of every channel: the enabled provider itself, or the outbox. The widget's
    sockets live in the web process (`widget_sockets`, which in production mode reach every
    replica's); without them webchat delivery asks the web process."""
    senders: dict[str, Sender] = {
        WEBCHAT: WebchatSender(widget_sockets, settings.web_url, settings.internal_token)
    }
    for provider in PROVIDERS:
        senders[provider.name] = channels.get(provider.name) or OutboxSender(provider.name, outbox)
    return senders


async def close_channels(senders: Mapping[str, Sender]) -> None:
    """Release the enabled channels' connections when the process stops."""
    for sender in senders.values():
        if isinstance(sender, ProviderChannel):
            await sender.close()
