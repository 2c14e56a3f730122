"""The background worker: periodic sweeps that must happen even when no request triggers
them (today: assigning queued conversations that no event picked up)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from bot.channels.registry import build_senders
from handoff.actions import distribute
from handoff.bot_api import BotApi
from handoff.context import Context
from handoff.events import HttpEventBus
from models.db import Database
from settings import Settings

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0


def build_context(settings: Settings) -> Context:
    return Context(
        settings=settings,
        db=Database(settings.database_url),
        bus=HttpEventBus(settings.web_url, settings.internal_token),
        senders=build_senders(settings, in_bot_process=False),
        bot=BotApi(settings.bot_url, settings.rasa_token),
    )


async def run(ctx: Context, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await distribute(ctx)
        except Exception:
            log.exception("queue sweep failed; retrying in %ss", SWEEP_SECONDS)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), SWEEP_SECONDS)


async def main() -> None:
    ctx = build_context(Settings.from_env())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker started")
    try:
        await run(ctx, stop)
    finally:
        await ctx.close()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(main())
