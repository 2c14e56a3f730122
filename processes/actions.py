"""The action server: runs the assistant's custom actions (bot/actions) for Rasa.

Rasa (the assistant, its own runtime) calls `POST /webhook` with the tracker and the action
to run; the actions use the platform's domain functions and database directly, so they run
here, on the platform's Python, with rasa-sdk's executor. Not rasa-sdk's own Sanic server:
its error handler answers a failure with the whole request, tracker and patient texts
included, and it takes any caller. This one answers only callers with the shared secret
(`Authorization: Bearer $ACTION_SERVER_TOKEN`, endpoints.yml sends it), listens on the host
of ACTION_SERVER_URL (loopback by default) and logs a failure by its type and place only.

    .venv/bin/python -m processes.actions
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import sys
import warnings
from typing import Any
from urllib.parse import urlsplit

import uvloop
from aiohttp import web
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import (
    ActionExecutionRejection,
    ActionMissingDomainException,
    ActionNotFoundException,
)
from rasa_sdk.utils import check_version_compatibility

from core.logs import log_failure
from core.private_files import keep_private
from core.settings import Settings

log = logging.getLogger(__name__)

# Registered by name: the entry point does not import the assistant's code.
ACTIONS_PACKAGE = "bot.actions"
EXECUTOR = web.AppKey("executor", ActionExecutor)
EXPECTED_AUTHORIZATION = web.AppKey("expected_authorization", bytes)
# Rasa sends the whole tracker and, on a new domain, the domain: allow generous bodies.
MAX_BODY = 32 * 1024 * 1024
# Rasa 3.6 (the last open-source Rasa) calls rasa-sdk 3.21 by design: the action protocol is
# the same, and the platform needs a current rasa-sdk. rasa-sdk warns at every call when the
# minor versions differ; only that expected warning is silenced.
_EXPECTED_MISMATCH = (
    r"Your versions of rasa and rasa_sdk might not be compatible\. "
    r"You are currently running rasa version 3\.6\."
)


class BadRequest(ValueError):
    """A body that is not an action call."""


def _authorized(request: web.Request) -> bool:
    given = request.headers.get("Authorization", "").encode()
    return hmac.compare_digest(given, request.app[EXPECTED_AUTHORIZATION])


async def _action_call(request: web.Request) -> dict[str, Any]:
    """The JSON action call. A body Rasa compressed (`Content-Encoding: deflate`, with
    COMPRESS_ACTION_SERVER_REQUEST) arrives inflated: aiohttp does what rasa-sdk does by
    hand, and `client_max_size` bounds the inflated size."""
    body = await request.read()
    try:
        call = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("body is not JSON") from exc
    if not isinstance(call, dict):
        raise BadRequest("body is not a JSON object")
    if not isinstance(call.get("next_action"), str) or not isinstance(call.get("tracker"), dict):
        raise BadRequest("an action call needs 'next_action' and 'tracker'")
    return call


def _check_version(version: object) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_EXPECTED_MISMATCH, category=UserWarning)
        check_version_compatibility(version if isinstance(version, str) else None)


Refusal = ActionExecutionRejection | ActionNotFoundException | ActionMissingDomainException


def _rejected(status: int, exc: Refusal) -> web.Response:
    return web.json_response({"error": exc.message, "action_name": exc.action_name}, status=status)


async def webhook(request: web.Request) -> web.Response:
    """Run the action Rasa asks for; answer with its events and messages."""
    if not _authorized(request):
        return web.json_response({"error": "unauthorized"}, status=401)
    try:
        call = await _action_call(request)
    except BadRequest as exc:
        return web.json_response({"error": str(exc)}, status=400)
    _check_version(call.get("version"))
    try:
        result = await request.app[EXECUTOR].run(call)
    except ActionExecutionRejection as exc:
        return _rejected(400, exc)
    except ActionNotFoundException as exc:
        return _rejected(404, exc)
    except ActionMissingDomainException as exc:
        return _rejected(449, exc)
    except Exception as exc:  # never the tracker in the answer or the log: it holds patient texts
        log_failure(log, exc, "action %s failed", call["next_action"][:100])
        return web.json_response({"error": "action failed"}, status=500)
    return web.json_response(result.model_dump() if result else None)


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_app(token: str) -> web.Application:
    """The action server with every action of bot.actions; refuses to be built without its
    shared secret."""
    if not token:
        raise ValueError("the action server needs its shared secret (ACTION_SERVER_TOKEN)")
    executor = ActionExecutor()
    executor.register_package(ACTIONS_PACKAGE)
    app = web.Application(client_max_size=MAX_BODY)
    app[EXECUTOR] = executor
    app[EXPECTED_AUTHORIZATION] = f"Bearer {token}".encode()
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/health", health)
    return app


def bind_address(action_server_url: str) -> tuple[str, int]:
    """Where to listen: the host and port Rasa is told to call (ACTION_SERVER_URL)."""
    parts = urlsplit(action_server_url)
    return parts.hostname or "127.0.0.1", parts.port or 5055


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # From the environment, never the secret file Settings would fall back to: Rasa reads
    # the same variable (endpoints.yml), and both must hold the same secret.
    if not os.environ.get("ACTION_SERVER_TOKEN"):
        sys.exit("ACTION_SERVER_TOKEN is not set: the action server does not start without it")
    keep_private()
    settings = Settings.from_env()
    host, port = bind_address(settings.action_server_url)
    web.run_app(
        build_app(settings.action_server_token),
        host=host,
        port=port,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
