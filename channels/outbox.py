"""The console outbox: what a channel without its provider secrets would send.

A channel whose secrets are not set is disabled; what is sent on it goes, one JSON line per
message, to `var/outbox/<channel>.jsonl`, so the clinic runs on one machine without any
provider account. The log line never carries the text.

The lines keep the texts (and one-time codes) a developer needs to follow a dialogue, and
name the patient they went to, so that personal data does not outlive its use here either:
erasing a patient removes their lines (`forget`), and the retention job drops lines past the
retention period and one-time codes once they expired (`prune`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from core.context import Reach
from core.settings import VAR
from models import ChannelIdentity, Message, utcnow

log = logging.getLogger(__name__)

OUTBOX = VAR / "outbox"


class OutboxSender:
    def __init__(self, channel: str, folder: Path = OUTBOX) -> None:
        self.channel = channel
        self.path = folder / f"{channel}.jsonl"

    async def deliver(
        self, message: Message, identity: ChannelIdentity, reach: Reach = Reach.FREE
    ) -> str | None:
        line = {
            "at": utcnow().isoformat(),
            "message_id": message.id,
            "patient_id": message.patient_id,
            "to": identity.external_id,
            "author_kind": str(message.author_kind),
            "sealed": bool(message.sealed),
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


def folders_of(senders: Mapping[str, object]) -> set[Path]:
    """The outbox folders the process's senders write to (none when every channel is
    enabled)."""
    return {s.path.parent for s in senders.values() if isinstance(s, OutboxSender)}


def _rewrite(folder: Path, drop: Callable[[dict[str, Any]], bool]) -> int:
    """Remove the lines `drop` selects from every outbox file; how many were removed."""
    removed = 0
    for path in sorted(folder.glob("*.jsonl")):
        kept: list[str] = []
        lines = path.read_text(encoding="utf-8").splitlines()
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {}
            if isinstance(entry, dict) and drop(entry):
                removed += 1
            else:
                kept.append(line)
        if len(kept) != len(lines):
            path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    return removed


async def forget(
    patient_ids: Collection[int], external_ids: Collection[str], folder: Path = OUTBOX
) -> int:
    """Remove what was sent to these patients (lines written before they named the patient
    are matched by the channel id they went to)."""
    return await asyncio.to_thread(
        _rewrite,
        folder,
        lambda e: e.get("patient_id") in patient_ids or e.get("to") in external_ids,
    )


def _before(entry: dict[str, Any], moment: datetime) -> bool:
    try:
        return datetime.fromisoformat(str(entry.get("at"))) < moment
    except ValueError:
        return True  # a line without a readable time cannot be kept on purpose


async def prune(*, before: datetime, sealed_before: datetime, folder: Path = OUTBOX) -> int:
    """Drop lines older than `before`, and one-time codes older than `sealed_before`."""
    return await asyncio.to_thread(
        _rewrite,
        folder,
        lambda e: _before(e, before) or (bool(e.get("sealed")) and _before(e, sealed_before)),
    )
