"""Typed keys of the web application's shared state."""

from aiohttp import web

from channels.webchat import Sockets
from core.context import Context
from core.errors import Unauthenticated
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


# Who the request's session cookie logs in, if anyone (set by the auth middleware).
USER = web.RequestKey[User | None]("user")


def current_user(request: web.Request) -> User:
    """The logged-in user; the auth middleware guarantees one on protected routes."""
    user = request[USER]
    if user is None:  # a route the auth middleware leaves open asked for a user
        raise Unauthenticated()
    return user
