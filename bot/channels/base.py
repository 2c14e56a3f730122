"""What every channel connector shares: the bot process's context, the handoff gate, input
sanitising, bot replies through the Sender, and replay of inbound that was never routed.

A connector's webhook stays thin: verify → parse → `record()` → ack → `route()` in the
background. Routing sends the message to Rasa only while the bot owns the conversation.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sqlalchemy import select

from handoff.actions import request_handoff
from handoff.bot_api import BotApi
from handoff.context import Context
from handoff.events import HttpEventBus, message_event
from handoff.history import Inbound, Recorded, latest_conversation, record_inbound
from handoff.outbound import send_bot_reply
from models import AuthorKind, Conversation, Direction, Message, Owner, Priority, utcnow
from models.db import Database
from settings import Settings

log = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
OFFERED_BUTTONS_LOOKBACK = 5


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


async def _was_offered(ctx: Context, conversation_id: int, payload: str) -> bool:
    """Only payloads of buttons the clinic (bot, reminders) recently showed in this
    conversation are trusted."""
    async with ctx.db.session() as session:
        query = (
            select(Message.buttons)
            .where(
                Message.conversation_id == conversation_id,
                Message.direction == Direction.OUTBOUND,
                Message.author_kind.in_((AuthorKind.BOT, AuthorKind.SYSTEM)),
            )
            .order_by(Message.id.desc())
            .limit(OFFERED_BUTTONS_LOOKBACK)
        )
        offered = (await session.execute(query)).scalars().all()
    return any(button.get("payload") == payload for buttons in offered for button in buttons)


class ChannelInput(InputChannel):
    """Base of our connectors: recording, the handoff gate and replay, in one place."""

    def __init__(self, ctx: Context | None = None) -> None:
        self._ctx = ctx
        self._tasks: set[asyncio.Task] = set()
        self._patient_locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

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
            await self.ctx.bus.publish(message_event(recorded.message, recorded.conversation))
        return recorded

    def route_later(self, message_id: int, on_new_message: OnNewMessage) -> None:
        task = asyncio.create_task(self.route(message_id, on_new_message))
        self._tasks.add(task)
        task.add_done_callback(self._route_done)

    def _route_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Left unprocessed: replayed at the next start of the bot process.
            log.error("%s: routing failed", self.name(), exc_info=task.exception())

    async def route(self, message_id: int, on_new_message: OnNewMessage) -> None:
        """Hand a recorded message to Rasa if the bot owns its conversation, once."""
        async with self.ctx.db.session() as session:
            message = await session.get(Message, message_id)
            conversation = await session.get(Conversation, message.conversation_id)
        if message.processed_at is not None:
            return
        async with self._patient_locks[message.patient_id]:
            if conversation.owner == Owner.BOT:
                await on_new_message(await self._user_message(message, conversation))
            await self._mark_processed(message_id)

    async def _user_message(self, message: Message, conversation: Conversation) -> UserMessage:
        text = neutralize_commands(message.text)
        if message.payload and await _was_offered(self.ctx, conversation.id, message.payload):
            text = message.payload
        return UserMessage(
            text=text,
            output_channel=self.get_output_channel(),
            sender_id=str(message.patient_id),
            input_channel=self.name(),
            message_id=str(message.id),
            metadata={"conversation_id": conversation.id, "message_id": message.id},
        )

    async def _mark_processed(self, message_id: int) -> None:
        async with self.ctx.db.session() as session:
            message = await session.get(Message, message_id)
            message.processed_at = utcnow()

    async def replay_unprocessed(self, on_new_message: OnNewMessage) -> None:
        """Route what a previous process recorded but died before routing."""
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
            pending = (await session.execute(query)).scalars().all()
        if pending:
            log.info("%s: replaying %d unrouted inbound messages", self.name(), len(pending))
        for message_id in pending:
            await self.route(message_id, on_new_message)


class ChannelSender(OutputChannel):
    """Rasa's output side of a channel: every bot reply is recorded in the shared history
    and delivered by `deliver`, the channel's provider call."""

    def __init__(self, ctx_factory: Callable[[], Context] = bot_context) -> None:
        self._ctx_factory = ctx_factory

    @classmethod
    def name(cls) -> str:
        raise NotImplementedError

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        ctx = self._ctx_factory()
        text = message.get("text") or ""
        buttons = button_view(message.get("buttons") or message.get("quick_replies") or [])
        if text or buttons:
            await send_bot_reply(ctx, int(recipient_id), self.name(), text, buttons)
        handoff = (message.get("custom") or {}).get("handoff")
        if handoff is not None:
            await self._hand_off(ctx, int(recipient_id), handoff)

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
