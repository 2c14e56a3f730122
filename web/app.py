"""The web application: every public endpoint — provider webhooks and the site widget, the
staff workspace, portal and admin pages and their JSON API, live push. Routes and middlewares
only; the process's context is built by its entry module (`processes/web.py`)."""

from __future__ import annotations

import logging

from aiohttp import web

from core.settings import Settings
from web import (
    account,
    admin,
    agenda,
    agenda_setup,
    analytics,
    api,
    files,
    labels,
    live,
    openapi,
    pages,
    patients,
    portal,
    privacy,
    search,
    security,
    templates,
    webhooks,
)
from web.keys import SETTINGS
from web.middlewares import auth_middleware, error_middleware

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[SETTINGS] = settings
    security.setup(app)
    app.cleanup_ctx.append(live.presence_heartbeats)
    pages.setup(app)
    account.setup(app)
    api.setup(app)
    files.setup(app)
    analytics.setup(app)
    labels.setup(app)
    live.setup(app)
    admin.setup(app)
    portal.setup(app)
    privacy.setup(app)
    agenda.setup(app)
    search.setup(app)
    templates.setup(app)
    patients.setup(app)
    agenda_setup.setup(app)
    webhooks.setup(app)
    openapi.setup(app)
    return app
