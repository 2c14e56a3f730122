"""The web process: staff workspace, demo clinic page, staff API and live push."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web

from bot.channels.registry import build_senders
from handoff.bot_api import BotApi
from handoff.context import Context
from handoff.web import admin, agenda, api, live, pages, portal
from handoff.web.hub import Hub
from handoff.web.keys import CTX, HUB, SETTINGS
from handoff.web.middlewares import auth_middleware, error_middleware
from models.db import Database
from settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


async def _context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hub = Hub()
    ctx = Context(
        settings=settings,
        db=Database(settings.database_url),
        bus=hub,
        senders=build_senders(settings, in_bot_process=False),
        bot=BotApi(settings.bot_url, settings.rasa_token),
    )
    app[HUB] = hub
    app[CTX] = ctx
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
