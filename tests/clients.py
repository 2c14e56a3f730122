"""Test clients speaking the product's real protocols: the widget's WebSocket and the staff
API (cookie login, JSON, live socket)."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

Frame = dict[str, Any]


async def first_match(
    queue: asyncio.Queue[Frame], predicate: Callable[[Frame], bool], timeout: float
) -> Frame:
    """The first queued frame that matches, skipping others; TimeoutError after `timeout`."""

    async def find() -> Frame:
        while True:
            frame = await queue.get()
            if predicate(frame):
                return frame

    return await asyncio.wait_for(find(), timeout)


class WidgetClient:
    _addresses = itertools.count(1)

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        # Each client is a visitor from an address of its own (believed where the proxy,
        # 127.0.0.1, is trusted), unless the test says otherwise; e.g. a page's Origin.
        n = next(self._addresses)
        self.headers = {"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}
        self.headers.update(headers or {})
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.token: str | None = None
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()
        self._reader: asyncio.Task | None = None

    async def connect(self, token: str | None = None) -> Frame:
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(self.url, headers=self.headers)
        self._reader = asyncio.create_task(self._read())
        await self.send({"type": "hello", "token": token})
        welcome = await self.expect(lambda f: f["type"] == "welcome")
        self.token = welcome["token"]
        return welcome

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await self.frames.put(json.loads(message.data))

    async def send(self, frame: Frame) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def say(
        self, text: str, *, payload: str | None = None, client_id: str | None = None
    ) -> Frame:
        client_id = client_id or uuid.uuid4().hex
        frame: Frame = {"type": "message", "id": client_id, "text": text}
        if payload is not None:
            frame["payload"] = payload
        await self.send(frame)
        return await self.expect(
            lambda f: f.get("id") == client_id and f["type"] in ("ack", "error")
        )

    async def expect(self, predicate: Callable[[Frame], bool], timeout: float = 30) -> Frame:
        return await first_match(self.frames, predicate, timeout)

    async def next_reply(self, author_kind: str | None = None, timeout: float = 30) -> Frame:
        frame = await self.expect(
            lambda f: (
                f["type"] == "message"
                and (author_kind is None or f["message"]["author_kind"] == author_kind)
            ),
            timeout,
        )
        return frame["message"]

    async def replies_within(self, seconds: float) -> list[Frame]:
        await asyncio.sleep(seconds)
        replies = []
        while not self.frames.empty():
            frame = self.frames.get_nowait()
            if frame["type"] == "message":
                replies.append(frame["message"])
        return replies

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self.http is not None:
            await self.http.close()


class StaffClient:
    _ids = itertools.count()

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.events: asyncio.Queue[Frame] = asyncio.Queue()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.base_url}{path}", json=body) as response:
            data = (
                await response.json()
                if response.content_type == "application/json"
                else await response.text()
            )
            return response.status, data

    async def login(self, email: str, password: str) -> None:
        status, body = await self.request(
            "POST", "/api/login", {"email": email, "password": password}
        )
        assert status == 200, body

    async def go_online(self) -> None:
        status, body = await self.request("POST", "/api/presence", {"presence": "online"})
        assert status == 200, body

    async def listen(self) -> None:
        self._ws = await self.http.ws_connect(f"{self.base_url}/api/ws")
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await self.events.put(json.loads(message.data))

    async def expect_event(self, predicate: Callable[[Frame], bool], timeout: float = 30) -> Frame:
        return await first_match(self.events, predicate, timeout)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        await self.http.close()
