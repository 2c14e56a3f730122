"""The web process: builds the clinic's context — database, channels and their senders, the
assistant client, the event bus and who listens to it — and serves the web application
(`web/app.py`) on WEB_URL.

    .venv/bin/python -m processes.web
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import uvloop
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from channels.registry import build_senders, close_channels, enabled_channels
from channels.webchat import Sockets
from core.context import Context
from core.events import SCREEN_EVENTS, EventBus, relayed
from core.private_files import keep_private
from core.ratelimit import build_limits
from core.relay import build_relay
from core.settings import Settings
from handoff.transitions import listeners, talking
from messaging.assistant import Assistant, AssistantClient
from messaging.inbound import Inbox
from models.db import Database
from web import live
from web.app import create_app as create_web_app
from web.hub import Hub
from web.keys import CTX, HUB, INBOX, SETTINGS, WIDGET_SOCKETS


async def clinic_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    relay = build_relay(settings)
    hub, sockets, bus = Hub(), Sockets(relay), EventBus()
    # With the relay, this process's screen events reach its Hub through Redis, as others' do.
    bus.listen(hub.publish if relay is None else relayed(relay), SCREEN_EVENTS)
    channels = enabled_channels(settings)
    assistant = AssistantClient(settings.bot_urls, settings.rasa_token)
    ctx = Context(
        settings=settings,
        db=Database(settings.database_url),
        bus=bus,
        senders=build_senders(settings, channels, widget_sockets=sockets),
        limits=build_limits(settings.redis_url),
        bot=Assistant(assistant),
        relay=relay,
    )
    listeners.listen(ctx)
    app[HUB] = hub
    app[CTX] = ctx
    app[WIDGET_SOCKETS] = sockets
    app[INBOX] = Inbox(ctx, assistant, channels, talking.join_open_episode)
    if relay is not None:
        await live.follow_relay(app, relay, sockets)
    yield
    await hub.close()
    await close_channels(ctx.senders)
    await ctx.close()


async def freeze_what_was_built(_app: web.Application) -> None:
    """Once the modules, the routes and the clinic's context are built, the collector leaves
    them alone: they live as long as the process, and scanning them made each full collection
    stop the event loop for 100-200 ms (a staff screen's ping waited as long)."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings) -> web.Application:
    app = create_web_app(settings)
    app.cleanup_ctx.insert(0, clinic_context)  # before the loops that use it
    return app


class PathOnlyAccessLogger(AbstractAccessLogger):
    """One line per request without its query string: a provider's handshake carries its
    verify token there, and no secret goes to a log. A provider's delivery that was
    acknowledged is not logged: at hundreds of patient messages a second the lines would
    cost more than the recording (a refused one is, by the webhook too)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if (
            request.method == "POST"
            and request.path.startswith("/webhooks/")
            and response.status < 300
        ):
            return
        self.logger.info(
            "%s %s %s %.1fms", request.method, request.path, response.status, time * 1000
        )


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    keep_private()
    settings = Settings.from_env()
    address = urlsplit(settings.web_url)
    app = create_app(settings)
    app.on_startup.append(freeze_what_was_built)  # after the clinic's context is built
    web.run_app(
        app,
        host=address.hostname,
        port=address.port,
        print=None,
        access_log_class=PathOnlyAccessLogger,
        loop=uvloop.new_event_loop(),  # the event loop Rasa's own server runs on, faster
    )


if __name__ == "__main__":
    main()
