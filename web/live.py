"""Live push: the staff WebSocket, fed by this process's events on the embedded default
(the worker's through the internal endpoint) and by every process's through the relay
(Redis) in production mode.

A socket carries the rights of the login it was opened with, and only while that login
holds: logging out, a deactivation or new password (which end the account's sessions) and a
role change close it at once, on every web replica, and every presence heartbeat re-checks
all sockets, which covers expired sessions. A manager's or admin's socket streams every
conversation's messages, so opening one is recorded in the audit log like any read of a
patient's history."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from accounts.auth import session_users
from channels.webchat import Sockets
from core import audit
from core.audit import AuditAction
from core.errors import BadRequest, Forbidden
from core.logs import log_failure
from core.relay import SCREENS, SESSIONS, Relay, RelayUnavailable
from handoff.presence import heartbeat
from web.hub import Subscriber
from web.keys import CTX, HUB, SESSION_COOKIE, SETTINGS, client_ip, current_user
from web.security import require_origin

HEARTBEAT_SECONDS = 20
# Private close code: the staff page goes to the login page instead of reconnecting.
SESSION_ENDED = 4001
# How often this process tells the database who has the workspace open; well under the
# presence timeout so a live attendant is never mistaken for one who left.
PRESENCE_HEARTBEAT_SECONDS = 15

log = logging.getLogger(__name__)


async def staff_socket(request: web.Request) -> web.WebSocketResponse:
    require_origin(request, request.app[SETTINGS].own_origins)
    user = current_user(request)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS)
    subscriber = Subscriber(
        user_id=user.id, role=user.role, ws=ws, session_token=request.cookies[SESSION_COOKIE]
    )
    if subscriber.sees_everything:
        async with request.app[CTX].db.session() as session:
            await audit.record(
                session, user, AuditAction.LIVE_SUPERVISION_OPENED, ip=client_ip(request)
            )
    await ws.prepare(request)
    hub = request.app[HUB]
    hub.subscribe(subscriber)
    await heartbeat(request.app[CTX], [user.id])
    pump = asyncio.create_task(hub.pump(subscriber))
    try:
        async for frame in ws:
            if frame.type == WSMsgType.ERROR:
                break  # the staff page only listens; anything it sends is ignored
    finally:
        hub.unsubscribe(subscriber)
        pump.cancel()
        await ws.close(code=subscriber.close_code, message=subscriber.close_reason.encode())
    return ws


async def close_revoked_sockets(app: web.Application, user_id: int) -> None:
    """After `user_id`'s logins or role may have changed: close their sockets that no longer
    hold, here at once and on every other web replica through the relay (were Redis away,
    the other replicas' next heartbeat re-check closes them)."""
    await close_revoked_here(app, user_id)
    relay = app[CTX].relay
    if relay is not None:
        try:
            await relay.publish(SESSIONS, {"user_id": user_id})
        except RelayUnavailable as exc:
            log.warning("could not tell the other replicas of a revoked login (%s)", exc)


async def close_revoked_here(app: web.Application, user_id: int | None = None) -> None:
    """Close this process's sockets (of `user_id`, or all) whose login no longer holds or
    whose user's role changed since they opened."""
    hub = app[HUB]
    subscribers = [s for s in hub.subscribers() if user_id in (None, s.user_id)]
    if not subscribers:
        return
    async with app[CTX].db.session() as session:
        users = await session_users(
            session, {s.session_token for s in subscribers}, idle=app[SETTINGS].session_idle
        )
    for subscriber in subscribers:
        user = users.get(subscriber.session_token)
        if user is None or user.role != subscriber.role:
            log.info("closing the live socket of user %s: its login changed", subscriber.user_id)
            await hub.disconnect(subscriber, SESSION_ENDED, "session ended")


async def follow_relay(app: web.Application, relay: Relay, widgets: Sockets) -> None:
    """Production mode: this replica's staff sockets get the screen events and login
    revocations of every process, and after the relay lost Redis (when events may have been
    missed) every browser here reconnects and reloads its state from the API."""

    async def revoked(message: dict[str, Any]) -> None:
        await close_revoked_here(app, int(message["user_id"]))

    async def resync() -> None:
        hub = app[HUB]
        for subscriber in hub.subscribers():
            await hub.disconnect(subscriber, WSCloseCode.TRY_AGAIN_LATER, "live feed resumed")
        await widgets.close_all()

    await relay.subscribe(SCREENS, app[HUB].publish)
    await relay.subscribe(SESSIONS, revoked)
    relay.on_resync = resync
    relay.start()


async def internal_events(request: web.Request) -> web.Response:
    expected = f"Bearer {request.app[SETTINGS].internal_token}"
    if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
        raise Forbidden()
    event = await request.json()
    if not isinstance(event, dict) or "type" not in event:
        raise BadRequest()
    await request.app[HUB].publish(event)
    return web.Response(status=204)


async def presence_heartbeats(app: web.Application) -> AsyncIterator[None]:
    """Background loop (in `cleanup_ctx`) keeping connected staff marked as present."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(PRESENCE_HEARTBEAT_SECONDS)
            try:
                await close_revoked_here(app)
                await heartbeat(app[CTX], app[HUB].connected_user_ids())
            except Exception as exc:
                log_failure(log, exc, "presence heartbeat failed; retrying")

    task = asyncio.create_task(beat())
    yield
    task.cancel()


def setup(app: web.Application) -> None:
    app.router.add_get("/api/ws", staff_socket)
    app.router.add_post("/internal/events", internal_events)
