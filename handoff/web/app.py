"""The web process: every public endpoint — provider webhooks and the site widget, the staff
workspace, portal and admin pages and their JSON API, live push."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web

from channels.registry import build_senders, enabled_channels
from channels.webchat import Sockets
from handoff.context import Context
from handoff.web import admin, agenda, api, live, pages, portal, webhooks
from handoff.web.hub import Hub
from handoff.web.keys import CTX, HUB, INBOX, SETTINGS, WIDGET_SOCKETS
from handoff.web.middlewares import auth_middleware, error_middleware
from messaging.assistant import Assistant, AssistantClient
from messaging.inbound import Inbox
from models.db import Database
from settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


async def _context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hub, sockets = Hub(), Sockets()
    channels = enabled_channels(settings)
    assistant = AssistantClient(settings.bot_url, settings.rasa_token)
    ctx = Context(
        settings=settings,
        db=Database(settings.database_url),
        bus=hub,
        senders=build_senders(settings, channels, widget_sockets=sockets),
        bot=Assistant(assistant),
    )
    app[HUB] = hub
    app[CTX] = ctx
    app[WIDGET_SOCKETS] = sockets
    app[INBOX] = Inbox(ctx, assistant, channels)
    yield
    await hub.close()
    await ctx.close()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_context)
    app.cleanup_ctx.append(live.presence_heartbeats)
    pages.setup(app)
    api.setup(app)
    live.setup(app)
    admin.setup(app)
    portal.setup(app)
    agenda.setup(app)
    webhooks.setup(app)
    return app


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.from_env()
    address = urlsplit(settings.web_url)
    web.run_app(create_app(settings), host=address.hostname, port=address.port, print=None)


if __name__ == "__main__":
    main()
