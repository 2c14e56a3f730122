"""Where every channel's events land: recorded before the provider is answered, then routed.

A webhook (or the widget's socket, or the e-mail poller) hands its decoded events to
`Inbox.handle`, which records each one idempotently and returns; the caller then acknowledges.
Each new patient message is routed in the background, one at a time per patient and in the
order recorded: while the bot owns the conversation it goes to the assistant and the answer
is recorded and delivered (`messaging.assistant.answer`); while a person owns it, it only
waits on the staff screens. What was recorded but never routed — the process died, the
assistant was down — is routed again by a sweep, and answered once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import (
    HANDOFF_PAYLOAD,
    Edit,
    Event,
    EventHandler,
    Ignored,
    Inbound,
    ProviderChannel,
    StatusUpdate,
    Unsent,
    Watermark,
    typed_option,
)
from core.catalog import t
from core.context import Context
from core.events import message_event
from core.logs import log_failure
from messaging.assistant import AssistantClient, BotMessage, answer, mark_processed
from messaging.history import (
    Recorded,
    episode_elsewhere,
    record_edit,
    record_inbound,
    record_status,
    record_watermark,
)
from models import (
    AuthorKind,
    ChannelIdentity,
    Conversation,
    Direction,
    Message,
    Owner,
    utcnow,
)

log = logging.getLogger(__name__)

# How many of the clinic's latest messages to a patient offer buttons that may be answered.
OFFERED_BUTTONS_LOOKBACK = 5


# Before a message goes to the bot: a patient already with (or waiting for) a person on
# another channel joins that episode instead; True when it joined. The handoff decides
# (`handoff.transitions.talking.join_open_episode`); the process's entry module passes it in.
JoinEpisode = Callable[[Context, int], Awaitable[bool]]


@dataclass(frozen=True)
class Route:
    """What routing a recorded message needs to know, read in one go."""

    message: Message
    conversation: Conversation
    identity: ChannelIdentity
    # The buttons the clinic recently offered on this channel identity, newest first.
    offers: list[list[dict[str, str]]]
    # Whether the patient is with (or waiting for) a person on another channel.
    person_elsewhere: bool


async def _recorded(session: AsyncSession, message_id: int) -> Recorded:
    message = await session.get_one(Message, message_id)
    conversation = await session.get_one(Conversation, message.conversation_id)
    identity = await session.get_one(ChannelIdentity, conversation.channel_identity_id)
    return Recorded(message=message, conversation=conversation, identity=identity)


async def _route_for(session: AsyncSession, recorded: Recorded) -> Route:
    conversation = recorded.conversation
    with_bot = conversation.owner == Owner.BOT
    return Route(
        message=recorded.message,
        conversation=conversation,
        identity=recorded.identity,
        offers=await _recent_offers(session, recorded.identity.id) if with_bot else [],
        person_elsewhere=with_bot and await _person_elsewhere(session, recorded),
    )


async def _person_elsewhere(session: AsyncSession, recorded: Recorded) -> bool:
    if recorded.person_elsewhere is not None:  # read while recording
        return recorded.person_elsewhere
    return await episode_elsewhere(session, recorded.conversation) is not None


class PatientLocks:
    """One lock per patient, dropped when nobody holds or waits for it (so the map does not
    grow with every patient ever seen)."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: Counter[int] = Counter()

    @asynccontextmanager
    async def hold(self, patient_id: int) -> AsyncIterator[bool]:
        """Hold the patient's lock; yields whether another routing held it first (what it
        did may have changed what this one read)."""
        # No await before the lock is taken or queued for: tasks created in the order the
        # messages were recorded queue in that order.
        lock = self._locks.setdefault(patient_id, asyncio.Lock())
        self._users[patient_id] += 1
        try:
            waited = lock.locked()
            async with lock:
                yield waited
        finally:
            self._users[patient_id] -= 1
            if not self._users[patient_id]:
                del self._users[patient_id], self._locks[patient_id]

    def __len__(self) -> int:
        return len(self._locks)


class Inbox:
    """The web process's inbound pipeline, shared by every channel."""

    # Inbound whose routing failed while the process kept running (the assistant briefly
    # down) is routed again by a sweep every `replay_every` seconds, once recorded more than
    # `replay_after` ago: by then whichever process recorded it is no longer routing it.
    replay_every: float = 30.0
    replay_after: timedelta = timedelta(minutes=2)

    def __init__(
        self,
        ctx: Context,
        assistant: AssistantClient,
        channels: Mapping[str, ProviderChannel],
        join_open_episode: JoinEpisode,
    ) -> None:
        self.ctx = ctx
        self.assistant = assistant
        self.channels = channels
        self.join_open_episode = join_open_episode
        self._tasks: set[asyncio.Task[Any]] = set()
        self._locks = PatientLocks()
        self._routing: set[int] = set()

    # --- recording ---------------------------------------------------------------------------

    async def handle(self, channel: str, events: Sequence[Event]) -> None:
        """Record every event of one delivery, in order, before it is acknowledged (a failure
        propagates: the provider is told to retry); new messages are routed afterwards."""
        handlers = self._handlers(channel)
        for event in events:
            handler = handlers.get(type(event))
            if handler is None:
                log.warning("%s: no handler for %s", channel, type(event).__name__)
                continue
            await handler(event)

    def _handlers(self, channel: str) -> dict[type, EventHandler]:
        own = self.channels[channel].handlers() if channel in self.channels else {}
        return {
            Inbound: self.accept,
            StatusUpdate: lambda update: self._on_status(channel, update),
            Watermark: lambda mark: self._on_watermark(channel, mark),
            Edit: lambda edit: self._on_edit(channel, edit),
            Unsent: lambda unsent: self._on_unsent(channel, unsent),
            Ignored: lambda ignored: self._on_ignored(channel, ignored),
            **own,
        }

    async def accept(self, inbound: Inbound) -> Recorded | None:
        """Record a patient message and route it in the background; None when this delivery
        was recorded before. What routing needs to know is read in the same transaction."""
        try:
            async with self.ctx.db.session(urgent=True) as session:
                recorded = await record_inbound(session, inbound)
                route = await _route_for(session, recorded)
        except IntegrityError:
            return None  # recorded before (a redelivery), or a copy of it at this very moment
        # Staff screens hear of it after the acknowledgement.
        self.later(self.ctx.bus.publish(message_event(recorded.message, recorded.conversation)))
        if recorded.message.processed_at is None:  # else a person serves it: nothing to route
            self.later(self.route(recorded.message.id, recorded.message.patient_id, route))
        return recorded

    async def _on_status(self, channel: str, update: StatusUpdate) -> None:
        async with self.ctx.db.session(urgent=True) as session:
            message = await record_status(
                session,
                channel,
                update.provider_message_id,
                update.status,
                at=update.at,
                error=update.error,
            )
        await self._publish([message] if message is not None else [])

    async def _on_watermark(self, channel: str, mark: Watermark) -> None:
        async with self.ctx.db.session(urgent=True) as session:
            changed = await record_watermark(
                session, channel, mark.external_user_id, mark.status, mark.until
            )
        await self._publish(changed)

    async def _on_edit(self, channel: str, edit: Edit) -> None:
        async with self.ctx.db.session(urgent=True) as session:
            message = await record_edit(session, channel, edit.provider_message_id, edit.text)
        await self._publish([message] if message is not None else [])

    async def _on_unsent(self, channel: str, unsent: Unsent) -> None:
        async with self.ctx.db.session(urgent=True) as session:
            message = await record_edit(
                session, channel, unsent.provider_message_id, t("channel.unsent")
            )
            if message is not None:
                message.attachments = []
        await self._publish([message] if message is not None else [])

    async def _on_ignored(self, channel: str, ignored: Ignored) -> None:
        log.info("%s: ignored a %s event", channel, ignored.kind)

    async def _publish(self, messages: Sequence[Message]) -> None:
        """Push changed messages to staff screens, after the acknowledgement."""
        for message in messages:
            async with self.ctx.db.session() as session:
                conversation = await session.get_one(Conversation, message.conversation_id)
            self.later(self.ctx.bus.publish(message_event(message, conversation)))

    # --- background work ---------------------------------------------------------------------

    def later(self, work: Awaitable[Any]) -> None:
        """Run after the webhook answered; the task is kept so it is not collected mid-way.
        A failed routing leaves its message unprocessed, for the next sweep."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log_failure(log, error, "background work of an inbound message failed")

    async def drain(self) -> None:
        """Wait for the work webhooks left running in the background."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- routing -----------------------------------------------------------------------------

    async def route(
        self,
        message_id: int,
        patient_id: int | None = None,
        known: Route | None = None,
        *,
        replay: bool = False,
    ) -> None:
        """Answer a recorded message if the bot owns its conversation, once. The task takes
        the patient's lock before it first waits, so one patient's messages reach the bot in
        the order they were recorded. What was `known` when it was recorded stands unless
        another routing of this patient ran in between (it may have handed it off)."""
        self._routing.add(message_id)
        try:
            if patient_id is None:
                async with self.ctx.db.session() as session:
                    patient_id = (await session.get_one(Message, message_id)).patient_id
            async with self._locks.hold(patient_id) as waited:
                if known is None or waited:
                    async with self.ctx.db.session() as session:
                        known = await _route_for(session, await _recorded(session, message_id))
                await self._route(known, replay)
        finally:
            self._routing.discard(message_id)

    async def _route(self, route: Route, replay: bool) -> None:
        message = route.message
        if message.processed_at is not None:
            return
        # A patient already with (or waiting for) a person on another channel stays with
        # them: this conversation joins that episode instead of reaching the bot.
        if route.conversation.owner != Owner.BOT or (
            route.person_elsewhere and await self.join_open_episode(self.ctx, route.conversation.id)
        ):
            await mark_processed(self.ctx, message.id)
        elif _unreadable(message):
            offer = [_offer_a_person()]
            await answer(self.ctx, message, route.identity, offer, author_kind=AuthorKind.SYSTEM)
        else:
            text = _what_the_bot_reads(message, route.offers)
            replies = await self.assistant.turn(message.patient_id, message, text, replay=replay)
            await answer(self.ctx, message, route.identity, replies)

    async def replay_unprocessed(self, recorded_before: datetime | None = None) -> int:
        """Route what was recorded but never routed: at start-up, whatever a previous process
        left; in a sweep, what was recorded before `recorded_before` and is not being routed
        by this process. The assistant is told it may have seen these already."""
        async with self.ctx.db.session() as session:
            query = (
                select(Message.id, Message.patient_id)
                .where(Message.direction == Direction.INBOUND, Message.processed_at.is_(None))
                .order_by(Message.id)
            )
            if recorded_before is not None:
                query = query.where(Message.recorded_at <= recorded_before)
            found = (await session.execute(query)).all()
        pending = [(m, p) for m, p in found if m not in self._routing]
        if pending:
            log.info("replaying %d unrouted inbound messages", len(pending))
        for message_id, patient_id in pending:
            try:
                await self.route(message_id, patient_id, replay=True)
            except Exception as exc:  # e.g. the assistant still down: the next sweep tries again
                log_failure(log, exc, "replay of message %s failed", message_id)
        return len(pending)

    def start(self) -> asyncio.Task[None]:
        """At start-up: replay what a previous process left (in the background, as work of
        this inbox, so `drain` waits for it), and sweep periodically from then on."""
        self.later(self._sweep(None))
        return asyncio.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.replay_every)
            await self._sweep(utcnow() - self.replay_after)

    async def _sweep(self, recorded_before: datetime | None) -> None:
        try:
            await self.replay_unprocessed(recorded_before)
        except Exception as exc:  # e.g. the database is down: the next sweep tries again
            log_failure(log, exc, "the sweep of unrouted messages failed")


def neutralize_commands(text: str) -> str:
    """Patient text must never reach Rasa as `/intent{...}` or `/restart`."""
    return text.lstrip().lstrip("/").lstrip()


def _offer_a_person() -> BotMessage:
    """The bot cannot read files yet: say so and offer a person, without asking it."""
    return BotMessage(
        t("channel.unreadable"),
        [{"title": t("channel.talk_to_person"), "payload": HANDOFF_PAYLOAD}],
    )


def _what_the_bot_reads(message: Message, offers: list[list[dict[str, str]]]) -> str:
    """The patient's text with any command neutralised — or, when they tapped (or typed the
    number or title of) a button the clinic recently offered them, that button's payload."""
    payload = message.payload
    if payload is None:
        payload = typed_option(message.text, offers[0] if offers else [])
    offered = any(b.get("payload") == payload for buttons in offers for b in buttons)
    return payload if payload and offered else neutralize_commands(message.text)


def _unreadable(message: Message) -> bool:
    """Files, audio, stickers or a location without any text: nothing the bot can read."""
    return bool(message.attachments) and not message.text.strip() and not message.payload


async def _recent_offers(session: AsyncSession, identity_id: int) -> list[list[dict[str, str]]]:
    """The buttons of the clinic's (bot, system) latest messages to this channel identity,
    newest first. Only payloads of buttons the clinic recently showed this patient on this
    channel are trusted, and a typed "1" answers the latest. The thread, not one
    conversation: the satisfaction question is asked as the human episode closes, and the
    answer arrives in the next conversation."""
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
        .limit(OFFERED_BUTTONS_LOOKBACK)
    )
    return [buttons or [] for buttons in (await session.execute(query)).scalars()]
