"""Where every channel's events land: recorded before the provider is answered, then routed.

A webhook (or the widget's socket, or the e-mail poller) hands its decoded events to
`Inbox.handle`, which records each one idempotently and returns; the caller then acknowledges.
Each new patient message is routed in the background, one at a time per patient and in the
order recorded: while the bot owns the conversation it goes to the assistant and the answer
is recorded and delivered (`messaging.assistant.answer`); while a person owns it, it only
waits on the staff screens. What was recorded but never routed — the process died, the
assistant was down — is routed again by a sweep, and answered once.

With several web replicas, "one at a time per patient" holds across all of them: a routing
holds the patient's lock (`Database.locks`: an advisory lock on PostgreSQL, released when its
holder dies) for the whole turn, and once it holds it routes the patient's oldest unrouted
message first — what a killed replica left, or what the assistant could not take — so a newer
message never overtakes an older one, and nothing already answered is routed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import (
    HANDOFF_PAYLOAD,
    UNAUTHENTICATED,
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
from core.events import BOT_HANDOFF, message_event
from core.logs import log_failure
from messaging.assistant import (
    PATIENT_TURN_LOCK,
    AssistantClient,
    BotMessage,
    answer,
    mark_processed,
)
from messaging.files import fetch_files, pending_messages
from messaging.history import (
    Recorded,
    episode_elsewhere,
    record_at_once,
    record_edit,
    record_inbound,
    record_status,
    record_watermark,
)
from messaging.redaction import NameWords, name_words
from models import (
    AuthorKind,
    ChannelIdentity,
    Conversation,
    Direction,
    Message,
    Owner,
    utcnow,
)
from models.locks import Locks

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
    # What the clinic's latest message to this channel identity asked for (its `expects`).
    expects: str | None
    # Whether the patient is with (or waiting for) a person on another channel.
    person_elsewhere: bool
    # The words of the patient's recorded name the bot must not read (`redaction.name_words`),
    # read beside the rest: a turn opens no session of its own for them.
    names: NameWords = frozenset()
    # Whether older messages of the patient were waiting to be routed (None: not read).
    unrouted_before: bool | None = None


async def _recorded(session: AsyncSession, message_id: int) -> Recorded:
    message = await session.get_one(Message, message_id)
    conversation = await session.get_one(Conversation, message.conversation_id)
    identity = await session.get_one(ChannelIdentity, conversation.channel_identity_id)
    return Recorded(message=message, conversation=conversation, identity=identity)


async def _route_for(session: AsyncSession, recorded: Recorded) -> Route:
    conversation = recorded.conversation
    with_bot = conversation.owner == Owner.BOT
    latest = await _latest_from_clinic(session, recorded.identity.id) if with_bot else []
    return Route(
        message=recorded.message,
        conversation=conversation,
        identity=recorded.identity,
        offers=[buttons or [] for buttons, _ in latest],
        expects=latest[0][1] if latest else None,
        person_elsewhere=with_bot and await _person_elsewhere(session, recorded),
        names=await name_words(session, conversation.patient_id)
        if with_bot and recorded.message.text
        else frozenset(),
        unrouted_before=recorded.around.unrouted_before,
    )


async def _person_elsewhere(session: AsyncSession, recorded: Recorded) -> bool:
    if recorded.around.person_elsewhere is not None:  # read while recording
        return recorded.around.person_elsewhere
    return await episode_elsewhere(session, recorded.conversation) is not None


# Held by the one replica sweeping.
SWEEP_LOCK = "inbound: sweep"


class Inbox:
    """The web process's inbound pipeline, shared by every channel."""

    # Inbound whose routing failed while the process kept running (the assistant down or
    # too slow) waits, unrouted, for a sweep every `replay_every` seconds, once recorded more
    # than `replay_after` ago. The patient's lock keeps the sweep from routing a message
    # another routing is on; the delay only spares it the ones their own routing is about to
    # take (queued behind the patient's previous turn), which would reach the assistant
    # flagged as replays.
    replay_every: float = 10.0
    replay_after: timedelta = timedelta(seconds=20)
    # A sweep replays this many patients at once: what a killed replica left (all its turns
    # in flight) is answered within about a sweep and a turn, not one patient after another.
    replays_at_once: int = 8

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
            recorded, route = await self._record_at_once(inbound) or await self._record(inbound)
        except IntegrityError:
            return None  # recorded before (a redelivery), or a copy of it at this very moment
        # Staff screens hear of it after the acknowledgement.
        self.later(self.ctx.bus.publish(message_event(recorded.message, recorded.conversation)))
        if recorded.message.processed_at is None:  # else a person serves it: nothing to route
            self.later(self.route(recorded.message.id, recorded.message.patient_id, route))
        if recorded.message.files_pending:
            self.later(fetch_files(self.ctx, self.channels, recorded.message.id))
        return recorded

    async def _record(self, inbound: Inbound) -> tuple[Recorded, Route]:
        async with self.ctx.db.session(urgent=True) as session:
            recorded = await record_inbound(session, inbound)
            return recorded, await _route_for(session, recorded)

    async def _record_at_once(self, inbound: Inbound) -> tuple[Recorded, Route] | None:
        """PostgreSQL, a known person (`record_at_once`): each statement committed on its
        own, two round trips fewer than a transaction. None when it takes a transaction."""
        if self.ctx.db.is_sqlite:
            return None
        async with self._autocommit() as session:
            recorded = await record_at_once(session, inbound)
            return None if recorded is None else (recorded, await _route_for(session, recorded))

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncSession]:
        """PostgreSQL: a session whose statements each commit on their own, without the
        BEGIN and COMMIT round trips of a transaction — for reads, and writes that are one
        statement each."""
        async with self.ctx.db.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            async with AsyncSession(bind=connection, expire_on_commit=False) as session:
                yield session

    def _reading(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session to read in: on SQLite a transaction in this process's writer turn."""
        return self.ctx.db.session() if self.ctx.db.is_sqlite else self._autocommit()

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
            # A gather of tasks that had all finished returns without giving the loop a turn,
            # so their `_finished` callbacks, which take them off the set, would never run.
            await asyncio.sleep(0)

    # --- routing -----------------------------------------------------------------------------

    async def route(
        self,
        message_id: int,
        patient_id: int | None = None,
        known: Route | None = None,
        *,
        replay: bool = False,
    ) -> None:
        """Answer a recorded message if the bot owns its conversation, once, after any older
        message of the patient still unrouted. The task asks for the patient's lock before
        it first waits, so one patient's messages reach the bot in the order they were
        recorded. What was `known` when it was recorded stands unless another routing of
        this patient held the lock first (it may have handed the patient off)."""
        if patient_id is None:
            async with self.ctx.db.session() as session:
                patient_id = (await session.get_one(Message, message_id)).patient_id
        async with self.ctx.db.locks.hold(PATIENT_TURN_LOCK, patient_id) as waited:
            await self._route_in_order(message_id, patient_id, None if waited else known, replay)

    async def _route_in_order(
        self, message_id: int, patient_id: int, known: Route | None, replay: bool
    ) -> None:
        """Under the patient's lock: their unrouted messages up to `message_id`, oldest first
        (read now: another replica may have answered them meanwhile, even this one while
        this task waited for a lock connection). An older one was left by a routing that
        failed or died, so the assistant may have seen it: a replay. A failure stops here,
        leaving the newer ones for after it. With one process on the database and nothing
        older unrouted when it was recorded, the message is the only one: a message only ever
        becomes routed, and this process's routings of the patient queue for the lock in the
        order they were recorded."""
        if (
            known is not None
            and known.unrouted_before is False
            and self.ctx.db.locks.within_this_process
        ):
            pending = [message_id]
        else:
            pending = await self._unrouted(patient_id, up_to=message_id)
        for each in pending:
            route = known if pending == [message_id] else None
            if route is None:  # routing an older message may have handed the patient off
                async with self.ctx.db.session() as session:
                    route = await _route_for(session, await _recorded(session, each))
            await self._route(route, replay or each != message_id)

    async def _unrouted(self, patient_id: int, *, up_to: int) -> list[int]:
        async with self._reading() as session:
            parameters = {"patient_id": patient_id, "up_to": up_to}
            return list((await session.execute(_UNROUTED, parameters)).scalars())

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
        elif reason := (route.identity.details or {}).get(UNAUTHENTICATED):
            await self._to_a_person(route, str(reason))
        elif _unreadable(message):
            offer = [_offer_a_person()]
            await answer(self.ctx, message, route.identity, offer, author_kind=AuthorKind.SYSTEM)
        else:
            text = _what_the_bot_reads(message, route.offers)
            replies = await self.assistant.turn(
                message.patient_id,
                message,
                text,
                answering=route.expects,
                replay=replay,
                names=route.names,
            )
            await answer(self.ctx, message, route.identity, replies)

    async def _to_a_person(self, route: Route, reason: str) -> None:
        """A sender the channel could not authenticate speaks for nobody: the bot never
        reads it (it could cancel an appointment); a person does, told why."""
        await mark_processed(self.ctx, route.message.id)
        event = {"type": BOT_HANDOFF, "conversation_id": route.conversation.id, "reason": reason}
        await self.ctx.bus.publish(event)

    async def replay_unprocessed(self, recorded_before: datetime | None = None) -> int:
        """Route what was recorded but never routed: at start-up, whatever was left; in a
        sweep, what was recorded before `recorded_before`. One replica sweeps at a time;
        a patient whose lock is held is left to its holder (or the next sweep). The
        assistant is told it may have seen these already. Returns how many it routed."""
        # Connections of its own: the sweep never waits for one behind live turns.
        locks = self.ctx.db.locks.set_apart(SWEEP_LOCK, connections=1 + self.replays_at_once)
        async with locks.try_hold(SWEEP_LOCK) as mine:
            if not mine:
                return 0
            at_once = asyncio.Semaphore(self.replays_at_once)
            waiting = await self._unrouted_by_patient(recorded_before)
            replays = (self._replay(locks, at_once, *patient) for patient in waiting)
            routed = sum(await asyncio.gather(*replays))
            if routed:
                log.info("replayed %d unrouted inbound messages", routed)
            return routed

    async def _replay(
        self, locks: Locks, at_once: asyncio.Semaphore, patient_id: int, newest: int, count: int
    ) -> int:
        """One patient's share of a sweep, beside up to `replays_at_once` others (in the order
        they come, so the longest waiting first): how many messages it routed."""
        async with at_once, locks.try_hold(PATIENT_TURN_LOCK, patient_id) as free:
            if not free:
                return 0
            try:
                await self._route_in_order(newest, patient_id, None, replay=True)
            except Exception as exc:  # e.g. the assistant still down: the next sweep
                log_failure(log, exc, "replay of patient %s failed", patient_id)
            return count

    async def _unrouted_by_patient(
        self, recorded_before: datetime | None
    ) -> list[tuple[int, int, int]]:
        """(patient, newest unrouted message, how many), the longest waiting patient first."""
        async with self.ctx.db.session() as session:
            query = (
                select(Message.patient_id, func.max(Message.id), func.count())
                .where(Message.direction == Direction.INBOUND, Message.processed_at.is_(None))
                .group_by(Message.patient_id)
                .order_by(func.min(Message.id))
            )
            if recorded_before is not None:
                query = query.where(Message.recorded_at <= recorded_before)
            return list((await session.execute(query)).tuples().all())

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
            for message_id in await pending_messages(self.ctx, recorded_before):
                await fetch_files(self.ctx, self.channels, message_id)
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


async def _latest_from_clinic(
    session: AsyncSession, identity_id: int
) -> list[tuple[list[dict[str, str]] | None, str | None]]:
    """The buttons and `expects` of the clinic's (bot, system) latest messages to this
    channel identity, newest first. Only payloads of buttons the clinic recently showed this
    patient on this channel are trusted, and a typed "1" answers the latest; a text answers
    the latest's question. The thread, not one conversation: the satisfaction question is
    asked as the human episode closes, and the answer arrives in the next conversation."""
    rows = await session.execute(_LATEST_FROM_CLINIC, {"identity_id": identity_id})
    return list(rows.tuples().all())


# The hot path's queries, built once (building one costs more than running it).
_UNROUTED = (
    select(Message.id)
    .where(
        Message.patient_id == bindparam("patient_id"),
        Message.direction == Direction.INBOUND,
        Message.processed_at.is_(None),
        Message.id <= bindparam("up_to"),
    )
    .order_by(Message.id)
)
_LATEST_FROM_CLINIC = (
    select(Message.buttons, Message.expects)
    .join(Conversation, Conversation.id == Message.conversation_id)
    .where(
        Conversation.channel_identity_id == bindparam("identity_id"),
        Message.direction == Direction.OUTBOUND,
        Message.author_kind.in_((AuthorKind.BOT, AuthorKind.SYSTEM)),
        Message.internal.is_(False),
    )
    .order_by(Message.id.desc())
    .limit(OFFERED_BUTTONS_LOOKBACK)
)
