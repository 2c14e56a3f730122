"""Account mail: the links that verify an address or reset a password, and the notices that
tell an address's owner someone used it.

It leaves through the e-mail channel's sender — the provider when SMTP is set, the console
outbox otherwise — like every message, but sealed like a one-time code: it is not recorded
in a conversation (the address may belong to nobody the clinic knows yet, and a live link
in a patient's history would let whoever reads it set their password) and it is attempted
once. It goes out in the background: a request answers before it leaves, so the answer and
its time are the same whether or not a mail went out."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import select

from core.catalog import t
from core.context import Context, DeliveryFailed
from core.logs import log_failure, without_numbers
from models import AuthorKind, ChannelIdentity, ClinicProfile, Message

log = logging.getLogger(__name__)

EMAIL = "email"


@dataclass(frozen=True)
class AccountMail:
    to: str
    text: str


async def clinic_name(ctx: Context) -> str:
    async with ctx.db.session() as session:
        name = await session.scalar(select(ClinicProfile.name).limit(1))
    return name or t("reminder.clinic_fallback")


async def deliver(ctx: Context, mail: AccountMail) -> bool:
    sender = ctx.senders.get(EMAIL)
    if sender is None:
        log.warning("no e-mail sender in this process: an account mail was not sent")
        return False
    message = Message(
        channel=EMAIL, text=mail.text, author_kind=AuthorKind.SYSTEM, buttons=[], attachments=[]
    )
    try:
        await sender.deliver(message, ChannelIdentity(channel=EMAIL, external_id=mail.to))
    except DeliveryFailed as failure:
        log.warning("an account mail was not delivered: %s", without_numbers(failure.reason))
        return False
    return True


class Postbox:
    """Account mail on its way, delivered in the background of the process."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._sending: set[asyncio.Task[bool]] = set()

    def post(self, mail: AccountMail | None) -> None:
        if mail is None:
            return
        task = asyncio.create_task(self._deliver(mail))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, mail: AccountMail) -> bool:
        try:
            return await deliver(self._ctx, mail)
        except Exception as exc:  # a sender bug must not go unseen in a background task
            log_failure(log, exc, "an account mail crashed its sender")
            return False

    async def drain(self) -> None:
        """Wait for the mail on its way (the process stops; a test checks what went out)."""
        await asyncio.gather(*self._sending)
