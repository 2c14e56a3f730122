"""What one process tells the others through Redis pub/sub (production mode, `REDIS_URL`).

Staff screens and widget sockets live on whichever web replica the browser reached; what
happens on any process (a webhook on another replica, a worker's reminder) must reach them.
A process publishes on a named channel; each web replica subscribes to the channels it
serves (the screen events, session revocations, the widget visitors it holds a socket of)
and hands each message to that channel's handler. Pub/sub delivers to whoever listens at
that moment and keeps nothing, so after Redis comes back the listener calls `on_resync`,
which makes the replica's browsers reload their state from the API.

Channels are named after the clinic's database: every replica of one clinic shares it, and
two clinics (or test runs) sharing a Redis server do not hear each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

from core.logs import log_failure
from core.settings import Settings

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "omniclinica:live:"
# Screen events (core.events.SCREEN_EVENTS) for every web replica's Hub.
SCREENS = "screens"
# A user whose logins may have ended (logout, new password, deactivation, role change).
SESSIONS = "sessions"
RECONNECT_FIRST_DELAY = 0.2
RECONNECT_MAX_DELAY = 5.0

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class RelayUnavailable(Exception):
    """Redis did not take a message: nobody else heard it."""


class Relay:
    def __init__(self, url: str, namespace: str) -> None:
        # Publishing reconnects on its own (redis-py's retries); the listener must not, so
        # that it knows when it was cut off and can have the browsers resync.
        self._redis = aioredis.Redis.from_url(url, decode_responses=True)
        self._listening = aioredis.Redis.from_url(
            url, decode_responses=True, retry=Retry(NoBackoff(), 0)
        )
        self._prefix = f"{CHANNEL_PREFIX}{namespace}:"
        self._handlers: dict[str, Handler] = {}
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        # Published, not yet sent (channel, message, who waits), and the task sending them.
        self._outgoing: list[tuple[str, str, asyncio.Future[int]]] = []
        self._sending: asyncio.Task[None] | None = None
        self.on_resync: Callable[[], Awaitable[None]] | None = None
        # Set while the listener is subscribed: tests and start-up wait for it.
        self.listening = asyncio.Event()

    async def publish(self, channel: str, message: dict[str, Any]) -> int:
        """Send `message` to every process listening on `channel` (this one included);
        how many received it. RelayUnavailable when Redis cannot be reached.

        What is published while a batch is on its way goes in the next one, pipelined: one
        socket write and one round trip for all of them (each costs more than the message,
        and a burst of webhooks publishes one per patient message), still in order."""
        waiting: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._outgoing.append((self._prefix + channel, json.dumps(message), waiting))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_batches())
        return await waiting

    async def _send_batches(self) -> None:
        while self._outgoing:
            batch, self._outgoing = self._outgoing, []
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for name, data, _waiting in batch:
                        pipe.publish(name, data)
                    heard = await pipe.execute()
            except (RedisError, OSError) as exc:
                for _name, _data, waiting in batch:
                    if not waiting.done():
                        waiting.set_exception(RelayUnavailable(type(exc).__name__))
                continue
            for (_name, _data, waiting), count in zip(batch, heard, strict=True):
                if not waiting.done():
                    waiting.set_result(int(count))

    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Hand what is published on `channel` to `handler`, from now on and after every
        reconnection; one handler per channel."""
        self._handlers[channel] = handler
        # If Redis is away, the listener subscribes every handler when it reconnects.
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.subscribe(self._prefix + channel)

    async def unsubscribe(self, channel: str) -> None:
        self._handlers.pop(channel, None)
        # If Redis is away, the listener's reconnection leaves out channels without a handler.
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(self._prefix + channel)

    def start(self) -> None:
        """Listen in the background (a process that only publishes never starts)."""
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        delay, cut_off = RECONNECT_FIRST_DELAY, False
        while True:
            pubsub = self._listening.pubsub(ignore_subscribe_messages=True)
            try:
                await self._subscribe_all(pubsub)
                if cut_off:
                    await self._resync()
                delay, cut_off = RECONNECT_FIRST_DELAY, False
                async for message in pubsub.listen():
                    await self._dispatch(message)
            except (RedisError, OSError) as exc:
                log.warning("live relay lost Redis (%s); reconnecting", type(exc).__name__)
                cut_off = True
            finally:
                self._pubsub = None
                self.listening.clear()
                await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_DELAY)

    async def _subscribe_all(self, pubsub: PubSub) -> None:
        """Subscribe every handled channel, including those added while this ran; only then
        do `subscribe` calls go straight to the connection."""
        subscribed: set[str] = set()
        while missing := set(self._handlers) - subscribed:
            await pubsub.subscribe(*(self._prefix + channel for channel in missing))
            subscribed |= missing
        self._pubsub = pubsub
        self.listening.set()

    async def _resync(self) -> None:
        if self.on_resync is None:
            return
        try:
            await self.on_resync()
        except Exception as exc:
            log_failure(log, exc, "live relay: resync after reconnecting failed")

    async def _dispatch(self, message: dict[str, Any]) -> None:
        channel = str(message["channel"]).removeprefix(self._prefix)
        handler = self._handlers.get(channel)
        if handler is None:  # unsubscribed meanwhile
            return
        try:
            await handler(json.loads(message["data"]))
        except Exception as exc:
            # The kind of channel only: a widget channel's name holds the visitor's id.
            kind = channel.partition(":")[0]
            log_failure(log, exc, "live relay: the handler of a %s message failed", kind)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._sending is not None:  # what was published is sent first
            await asyncio.gather(self._sending, return_exceptions=True)
        await self._redis.aclose()
        await self._listening.aclose()


def build_relay(settings: Settings) -> Relay | None:
    """The relay of production mode (`REDIS_URL`); None on the embedded default."""
    if not settings.redis_url:
        return None
    database = make_url(settings.database_url).database or ""
    return Relay(settings.redis_url, namespace=database.rsplit("/", 1)[-1])
