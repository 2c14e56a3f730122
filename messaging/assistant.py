"""The platform's side of the assistant: one internal HTTP call per turn to the Rasa
connector (`bot/channels/platform.py`, loopback + shared secret), and the bot's answer applied
here — recorded, delivered through the channel's one sender, and what the actions asked of the
platform carried out (a handoff, a one-time code).

Exactly once: a turn's replies are recorded in the same transaction that marks the patient's
message processed, and delivered after it. A crash before that transaction leaves the message
for the sweep, which replays it with `replay=True`; the connector then answers from the tracker
instead of running the turn again, so the patient is never answered twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.context import AssistantUnavailable, Context
from core.events import BOT_HANDOFF, message_event
from messaging import history
from messaging.history import Reply, latest_conversation, record_answer, record_outbound
from messaging.outbound import deliver
from messaging.redaction import NAME, NameWords, address, redact
from messaging.verification import send_code
from models import (
    AuthorKind,
    ChannelIdentity,
    Conversation,
    Direction,
    Message,
    utcnow,
)

log = logging.getLogger(__name__)

# A turn takes the assistant well under a second; actions that query the agenda take a few.
TURN_TIMEOUT = aiohttp.ClientTimeout(total=30)
# Held (`Database.locks`) for each call that runs a turn of a patient's dialogue, by whichever
# process makes it: one turn in flight per patient across every replica, as the assistant's
# replicas share the tracker store and would otherwise lose one of two concurrent updates.
# Not reentrant: nothing run under it may ask for it again.
PATIENT_TURN_LOCK = "assistant: patient turn"


@dataclass(frozen=True)
class BotMessage:
    """One message of the bot's answer: text with its buttons, and what a custom action
    asked of the platform in `custom` (`handoff`, `identity_code`) or what a question
    `expects` (`messaging.redaction.NAME`)."""

    text: str = ""
    buttons: list[dict[str, str]] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> BotMessage:
        buttons = raw.get("buttons") or raw.get("quick_replies") or []
        custom = raw.get("custom")
        return cls(
            text=str(raw.get("text") or ""),
            buttons=[
                {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                for b in buttons
            ],
            custom=custom if isinstance(custom, dict) else {},
        )


class AssistantClient:
    """HTTP to the assistants' connector; one keep-alive session per process.

    With several assistant replicas (`BOT_URL` lists them), each patient has a preference
    order over them by rendezvous hashing — stable across processes and restarts, and a
    replica added or removed moves only its share of patients — and talks to the first that
    accepts the connection. Only a refused connection fails over: once a replica has the
    request it may have run the turn, so any other failure leaves the message to the sweep's
    replay rather than risk running it twice."""

    def __init__(self, bot_urls: Sequence[str], token: str) -> None:
        self._urls = tuple(f"{url}/webhooks/platform" for url in bot_urls)
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    def replicas_for(self, patient_id: int) -> list[str]:
        """The connector URLs in this patient's order of preference."""
        return sorted(self._urls, key=lambda url: _weight(patient_id, url), reverse=True)

    async def _post(self, patient_id: int, path: str, body: dict[str, Any]) -> list[BotMessage]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=TURN_TIMEOUT)
        refused: AssistantUnavailable | None = None
        for url in self.replicas_for(patient_id):
            try:
                return await self._post_to(self._session, f"{url}/{path}", body)
            except aiohttp.ClientConnectorError as exc:
                log.warning("assistant replica %s refused the connection; trying the next", url)
                refused = AssistantUnavailable(f"{path}: {type(exc).__name__}")
        assert refused is not None  # there is always at least one replica
        raise refused

    async def _post_to(
        self, session: aiohttp.ClientSession, url: str, body: dict[str, Any]
    ) -> list[BotMessage]:
        try:
            async with session.post(url, json=body, headers=self._headers) as resp:
                if resp.status != 200:
                    raise AssistantUnavailable(f"{url}: HTTP {resp.status}")
                answer = await resp.json()
        except aiohttp.ClientConnectorError:
            raise
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise AssistantUnavailable(f"{url}: {type(exc).__name__}") from exc
        return [BotMessage.from_json(m) for m in answer.get("messages") or []]

    async def turn(
        self,
        patient_id: int,
        message: Message,
        text: str,
        *,
        answering: str | None = None,
        replay: bool = False,
        names: NameWords = frozenset(),
    ) -> list[BotMessage]:
        """The bot's answer to one recorded patient message (`text` is what the bot reads:
        the text, or the payload of the button it chose), `answering` what the bot's latest
        question expects. Typed CPFs, phones, e-mails and names (`names`: the words of the
        patient's recorded name) reach the assistant as placeholders (`messaging.redaction`)."""
        if text != message.payload:
            text = redact(text, answering=answering, names=names).text
        return await self._post(
            patient_id,
            "turn",
            {
                "sender": str(patient_id),
                "message_id": str(message.id),
                "text": text,
                "channel": message.channel,
                "metadata": {"conversation_id": message.conversation_id, "message_id": message.id},
                "replay": replay,
            },
        )

    async def hand_back(self, patient_id: int, intent: str, channel: str) -> list[BotMessage]:
        """Resume the patient's dialogue after a person served them; the bot speaks first."""
        return await self._post(
            patient_id,
            "hand_back",
            {"sender": str(patient_id), "intent": intent, "channel": channel},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _weight(patient_id: int, url: str) -> bytes:
    return hashlib.sha256(f"{patient_id}@{url}".encode()).digest()


class Assistant:
    """What the platform's domain asks of the assistant (`Context.bot`)."""

    def __init__(self, client: AssistantClient) -> None:
        self.client = client

    async def hand_back(self, ctx: Context, patient_id: int, intent: str) -> None:
        """The bot speaks first on the channel the patient wrote on last: a turn like any
        other, under the patient's turn lock."""
        async with ctx.db.locks.hold(PATIENT_TURN_LOCK, patient_id):
            async with ctx.db.session() as session:
                channel = await session.scalar(
                    select(Message.channel)
                    .where(Message.patient_id == patient_id, Message.direction == Direction.INBOUND)
                    .order_by(Message.id.desc())
                    .limit(1)
                )
            if channel is None:
                return
            replies = await self.client.hand_back(patient_id, intent, channel)
            await say(ctx, patient_id, channel, replies)

    async def close(self) -> None:
        await self.client.close()


async def answer(
    ctx: Context,
    message: Message,
    identity: ChannelIdentity,
    replies: Sequence[BotMessage],
    *,
    author_kind: AuthorKind = AuthorKind.BOT,
) -> bool:
    """Answer a patient's message: the replies are recorded on its conversation, with their
    first delivery attempt taken, in the same transaction that marks the message processed —
    so it is answered once even when two processes race, and never again after a failure
    past this point — then delivered, and what the actions asked is carried out. False when
    the message had already been answered."""
    async with ctx.db.session() as session:
        drafts = [await _draft(session, message.patient_id, reply) for reply in _said(replies)]
        answered = await record_answer(session, message, drafts, author_kind)
    if answered is None:
        return False
    conversation, recorded = answered
    await _deliver(ctx, recorded, identity, conversation)
    await _carry_out(ctx, message.patient_id, conversation, replies)
    return True


async def say(ctx: Context, patient_id: int, channel: str, replies: Sequence[BotMessage]) -> None:
    """The bot speaks first (a hand-back, a follow-up), on the patient's latest conversation
    on `channel` (after a merge, the surviving patient's)."""
    async with ctx.db.session() as session:
        conversation = await latest_conversation(session, patient_id, channel)
        if conversation is None:
            log.warning("bot reply for patient %s has no conversation on %s", patient_id, channel)
            return
        recorded = await _record(session, conversation, replies, AuthorKind.BOT)
        identity = await session.get_one(ChannelIdentity, conversation.channel_identity_id)
    await _deliver(ctx, recorded, identity, conversation)
    await _carry_out(ctx, patient_id, conversation, replies)


async def _record(
    session: AsyncSession,
    conversation: Conversation,
    replies: Sequence[BotMessage],
    author_kind: AuthorKind,
) -> list[Message]:
    recorded = []
    for reply in _said(replies):
        draft = await _draft(session, conversation.patient_id, reply)
        message = await record_outbound(
            session,
            conversation,
            text=draft.text,
            author_kind=author_kind,
            buttons=draft.buttons,
            claimed=True,
            expects=draft.expects,
        )
        recorded.append(message)
    return recorded


def _said(replies: Sequence[BotMessage]) -> list[BotMessage]:
    """The bot's messages that say something to the patient (not only ask the platform)."""
    return [reply for reply in replies if reply.text or reply.buttons]


async def _draft(session: AsyncSession, patient_id: int, reply: BotMessage) -> Reply:
    text = await address(session, patient_id, reply.text)
    return Reply(text, reply.buttons, _expected(reply))


def _expected(reply: BotMessage) -> str | None:
    expects = reply.custom.get("expects")
    return expects if expects == NAME else None


async def _deliver(
    ctx: Context,
    recorded: Sequence[Message],
    identity: ChannelIdentity,
    conversation: Conversation,
) -> None:
    for message in recorded:
        await ctx.bus.publish(message_event(message, conversation))
        await deliver(ctx, message, identity, conversation, retry_later=True, claimed=True)


async def mark_processed(ctx: Context, message_id: int) -> None:
    """A message that needs no answer (a person serves the patient) is done."""
    async with ctx.db.session() as session:
        await history.mark_processed(session, message_id, utcnow())


async def _carry_out(
    ctx: Context, patient_id: int, conversation: Conversation, replies: Sequence[BotMessage]
) -> None:
    """A one-time code to send (whether it went or not, the patient is answered as for a
    decoy: `messaging.verification.send_code`), then a handoff, in the order the actions
    asked."""
    for reply in replies:
        handoff = reply.custom.get("handoff")
        if (code := reply.custom.get("identity_code")) is not None:
            await send_code(ctx, int(code["claim"]), patient_id)
        if handoff is not None:  # the handoff listens (handoff.transitions.listeners.listen)
            await ctx.bus.publish(
                {
                    "type": BOT_HANDOFF,
                    "conversation_id": conversation.id,
                    "reason": str(handoff.get("reason", "pedido")),
                    "priority": str(handoff.get("priority", "normal")),
                }
            )
