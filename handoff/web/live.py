"""Live push: the staff WebSocket and the internal endpoint other processes publish to."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

from handoff.logs import log_failure
from handoff.timers import heartbeat
from handoff.web.hub import Subscriber
from handoff.web.keys import CTX, HUB, SETTINGS, current_user
from handoff.web.middlewares import json_error

HEARTBEAT_SECONDS = 20
# How often this process tells the database who has the workspace open; well under the
# presence timeout so a live attendant is never mistaken for one who left.
PRESENCE_HEARTBEAT_SECONDS = 15

log = logging.getLogger(__name__)


async def staff_socket(request: web.Request) -> web.WebSocketResponse:
    user = current_user(request)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS)
    await ws.prepare(request)
    hub = request.app[HUB]
    subscriber = Subscriber(user_id=user.id, role=user.role, ws=ws)
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
    return ws


async def internal_events(request: web.Request) -> web.Response:
    expected = f"Bearer {request.app[SETTINGS].internal_token}"
    if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
        return json_error(403, "error.forbidden")
    event = await request.json()
    if not isinstance(event, dict) or "type" not in event:
        return json_error(400, "error.invalid_json")
    await request.app[HUB].publish(event)
    return web.Response(status=204)


async def presence_heartbeats(app: web.Application) -> AsyncIterator[None]:
    """Background loop (in `cleanup_ctx`) keeping connected staff marked as present."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(PRESENCE_HEARTBEAT_SECONDS)
            try:
                await heartbeat(app[CTX], app[HUB].connected_user_ids())
            except Exception as exc:
                log_failure(log, exc, "presence heartbeat failed; retrying")

    task = asyncio.create_task(beat())
    yield
    task.cancel()


def setup(app: web.Application) -> None:
    app.router.add_get("/api/ws", staff_socket)
    app.router.add_post("/internal/events", internal_events)
