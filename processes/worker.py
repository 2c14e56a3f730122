"""The worker process: periodic jobs that must run even when no request triggers them.

Each job is an async function of the context, run every `interval` seconds; one failing run
is logged and retried at the next tick without stopping the others.

Several workers (and web replicas) may be alive at once. A job is safe with them one of two
ways: it claims each row it acts on (delivery retries claim each attempt with a
compare-and-set, `messaging.outbound.deliver`, so workers share the work), or it is
`exclusive`: one process at a time runs it and the others skip that tick (a lock of
`Database.locks`, which a killed worker releases by dying). Queue distribution is exclusive
because it must take the queue's head in priority order (skipping a locked head would let a
lower priority overtake it; its row locks already assign each conversation once, the lock
spares two workers queueing on them); the handoff timers because their steps read then act in
separate transactions and one asks the assistant to speak first (a hand-back twice would
greet the patient twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import uvloop

from accounts.erasure import erase_expired
from channels.registry import build_senders, close_channels, enabled_channels
from channels.webchat import Sockets
from core.context import Context
from core.events import SCREEN_EVENTS, EventBus, HttpForwarder, relayed
from core.logs import log_failure
from core.private_files import keep_private
from core.ratelimit import build_limits
from core.relay import build_relay
from core.settings import Settings
from handoff.timers import sweep
from handoff.transitions import listeners, queueing
from messaging.assistant import Assistant, AssistantClient
from messaging.retries import retry_due_deliveries
from models.db import Database
from scheduling.reminders import dispatch_due, plan_reminders

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    interval: float
    run: Callable[[Context], Awaitable[object]]
    # Run by one process at a time; the others skip the tick.
    exclusive: bool = False

    async def run_once(self, ctx: Context) -> None:
        if not self.exclusive:
            await self.run(ctx)
            return
        async with ctx.db.locks.try_hold(f"worker: {self.name}") as mine:
            if mine:
                await self.run(ctx)


JOBS = [
    # Assign queued conversations no event picked up (e.g. a process died mid-handoff).
    PeriodicJob("queue distribution", 5.0, queueing.distribute, exclusive=True),
    PeriodicJob("handoff timers", 5.0, sweep, exclusive=True),
    PeriodicJob("reminder planning", 5.0, plan_reminders),
    PeriodicJob("reminder dispatch", 5.0, dispatch_due),
    PeriodicJob("delivery retries", 5.0, retry_due_deliveries),
    # Erase patients inactive past RETENTION_DAYS; drop expired outbox lines and codes.
    PeriodicJob("data retention", 600.0, erase_expired),
]


def build_context(settings: Settings) -> Context:
    bus = EventBus()
    # Staff screens and widget sockets live on the web replicas: in production mode the
    # worker publishes to them through Redis; on the embedded default it asks the one web
    # process over HTTP.
    relay = build_relay(settings)
    if relay is None:
        bus.listen(HttpForwarder(settings.web_url, settings.internal_token), SCREEN_EVENTS)
    else:
        bus.listen(relayed(relay), SCREEN_EVENTS)
    widget_sockets = None if relay is None else Sockets(relay)
    ctx = Context(
        settings=settings,
        db=Database(settings.database_url),
        bus=bus,
        senders=build_senders(settings, enabled_channels(settings), widget_sockets=widget_sockets),
        limits=build_limits(settings.redis_url),
        bot=Assistant(AssistantClient(settings.bot_urls, settings.rasa_token)),
        relay=relay,
    )
    listeners.listen(ctx)
    return ctx


async def run_periodically(job: PeriodicJob, ctx: Context, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await job.run_once(ctx)
        except Exception as exc:
            log_failure(log, exc, "%s failed; retrying in %ss", job.name, job.interval)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), job.interval)


async def main() -> None:
    ctx = build_context(Settings.from_env())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker started: %s", ", ".join(job.name for job in JOBS))
    try:
        await asyncio.gather(*(run_periodically(job, ctx, stop) for job in JOBS))
    finally:
        await close_channels(ctx.senders)
        await ctx.close()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    keep_private()
    uvloop.run(main())
