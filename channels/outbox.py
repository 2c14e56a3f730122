"""The console outbox: what a channel without its provider secrets would send.

A channel whose secrets are not set is disabled; what is sent on it goes, one JSON line per
message, to `var/outbox/<channel>.jsonl`, so the clinic runs on one machine without any
provider account. The log line never carries the text.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from core.settings import VAR
from models import ChannelIdentity, Message, utcnow

log = logging.getLogger(__name__)

OUTBOX = VAR / "outbox"


class OutboxSender:
    def __init__(self, channel: str, folder: Path = OUTBOX) -> None:
        self.channel = channel
        self.path = folder / f"{channel}.jsonl"

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
