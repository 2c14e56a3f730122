"""What every response tells the browser, and which pages may open the sockets.

Headers: every response (pages, JSON, static files, aiohttp's own errors and redirects) gets
them from one response-prepare hook, so no route can be added without them:

- a Content-Security-Policy that runs only the platform's own script and style files (no
  inline script or style anywhere), talks only to the platform itself (its pages' `fetch`
  and live socket), loads no plugins, cannot be framed and cannot rebase its links;
- `nosniff`, a same-origin Referrer-Policy, no camera/microphone/location, and HSTS when the
  public address is https;
- the widget's script and style are for the clinic sites: they may be loaded from any page
  (Cross-Origin-Resource-Policy) and are CORS-readable from the sites in WIDGET_ORIGINS
  only; everything else is same-origin.

Sockets: a browser always sends `Origin` with a WebSocket handshake, and the cookie of the
platform goes with it whatever page opened it. So the staff socket accepts only the
platform's own pages and the widget's only the sites that embed it; any other page is refused
with 403 before the upgrade. A handshake without `Origin` comes from a program, not a
browser, and could claim any origin: it carries no visitor's or staff member's browser
session, so it is let through to the socket's own checks (a login, the widget's limits).
"""

from __future__ import annotations

import logging

from aiohttp import web

from channels.webchat import UPLOAD_PATH
from core.settings import Settings, origin_of
from web.keys import SETTINGS

log = logging.getLogger(__name__)

WIDGET_FILES = frozenset({"/webhooks/webchat/widget.js", "/webhooks/webchat/widget.css"})
# What the widget's script on a clinic site may read the answers of (CORS), besides its files.
WIDGET_CORS = WIDGET_FILES | {UPLOAD_PATH}
HSTS_SECONDS = 2 * 365 * 24 * 3600


def content_security_policy(settings: Settings) -> str:
    # 'self' covers ws(s):// of the page's own host in current browsers; the socket origins
    # are listed too for the ones that read CSP level 2.
    sockets = sorted(origin.replace("http", "ws", 1) for origin in settings.own_origins)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            # blob: the widget's thumbnail of a photo the visitor is sending, from their disk.
            "img-src 'self' blob:",
            "font-src 'self'",
            f"connect-src 'self' {' '.join(sockets)}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


async def set_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    settings = request.app[SETTINGS]
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(settings)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"  # frame-ancestors for browsers without CSP 2
    headers["Referrer-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if settings.https:
        headers["Strict-Transport-Security"] = f"max-age={HSTS_SECONDS}"
    if request.path in WIDGET_FILES:
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    else:
        headers["Cross-Origin-Resource-Policy"] = "same-origin"
    if request.path in WIDGET_CORS:
        headers["Vary"] = "Origin"
        origin = request.headers.get("Origin")
        if origin is not None and _origin(origin) in settings.embedding_origins:
            headers["Access-Control-Allow-Origin"] = origin


def _origin(header: str) -> str | None:
    try:
        return origin_of(header)
    except ValueError:  # e.g. a port that is not a number
        return None


def require_origin(request: web.Request, allowed: frozenset[str]) -> None:
    """Refuse (403, before any upgrade) a socket that a page of another site opened."""
    origin = request.headers.get("Origin")
    if origin is not None and _origin(origin) not in allowed:
        log.warning("refused a socket on %s opened from another site", request.path)
        # aiohttp's own 403: a page's script never sees why a handshake failed anyway.
        raise web.HTTPForbidden()


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(set_security_headers)
