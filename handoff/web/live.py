"""Live push: the staff WebSocket and the internal endpoint other processes publish to."""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import WSMsgType, web

from handoff.web.hub import Subscriber
from handoff.web.keys import HUB, SETTINGS, current_user
from handoff.web.middlewares import json_error

HEARTBEAT_SECONDS = 20


async def staff_socket(request: web.Request) -> web.WebSocketResponse:
    user = current_user(request)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS)
    await ws.prepare(request)
    hub = request.app[HUB]
    subscriber = Subscriber(user_id=user.id, role=user.role, ws=ws)
    hub.subscribe(subscriber)
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


def setup(app: web.Application) -> None:
    app.router.add_get("/api/ws", staff_socket)
    app.router.add_post("/internal/events", internal_events)
