"""Typed keys of the web application's shared state, and what a request says about its sender."""

import ipaddress
from functools import cache

from aiohttp import web

from channels.webchat import Sockets
from core import access
from core.context import Context
from core.errors import BadRequest, Forbidden, Unauthenticated
from core.settings import Settings
from messaging.inbound import Inbox
from models import User
from web.hub import Hub

SETTINGS = web.AppKey("settings", Settings)
CTX = web.AppKey("ctx", Context)
HUB = web.AppKey("hub", Hub)
INBOX = web.AppKey("inbox", Inbox)
WIDGET_SOCKETS = web.AppKey("widget_sockets", Sockets)
SESSION_COOKIE = "oc_session"
# The largest id the databases' integer columns hold (PostgreSQL's INTEGER): a larger one
# names no row, and the database would refuse it rather than find nothing.
MAX_ID = 2**31 - 1


def id_from(raw: object) -> int | None:
    """An id as a request carries it (a JSON integer, or ASCII digits in a path or query),
    or None when it cannot be the id of anything."""
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_ID)):
        raw = int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= MAX_ID:
        return raw
    return None


# Who the request's session cookie logs in, if anyone (set by the auth middleware).
USER = web.RequestKey[User | None]("user")


def bad_parameter(name: str) -> BadRequest:
    """A query or body parameter that is missing or malformed (400, names the parameter)."""
    return BadRequest("error.bad_parameter", name=name)


def query_id(request: web.Request, name: str) -> int | None:
    """The optional id in the query string `name` (None when absent)."""
    raw = request.query.get(name)
    if not raw:
        return None
    if (value := id_from(raw)) is None:
        raise bad_parameter(name)
    return value


def current_user(request: web.Request) -> User:
    """The logged-in user; the auth middleware guarantees one on protected routes."""
    user = request[USER]
    if user is None:  # a route the auth middleware leaves open asked for a user
        raise Unauthenticated()
    return user


def current_admin(request: web.Request) -> User:
    """The logged-in user, who must be an admin (403 otherwise; `core.access` decides)."""
    user = current_user(request)
    if not access.is_admin(user):
        raise Forbidden()
    return user


@cache
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _trusted(address: str, trusted: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(trusted))


def client_ip(request: web.Request) -> str:
    """The address of whoever sent the request. Behind a trusted reverse proxy
    (`TRUSTED_PROXIES`) it is the right-most X-Forwarded-For entry that is not itself a
    trusted proxy — the entries to its left were written by the client and prove nothing;
    from anyone else the header is ignored."""
    trusted = request.app[SETTINGS].trusted_proxies
    remote = request.remote or ""
    if not _trusted(remote, trusted):
        return remote
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        if not _trusted(hop, trusted):
            return hop
    return remote
