"""A local stand-in for every provider API the Senders call (Meta Graph, Twilio, Telegram):
a real aiohttp server on its own thread, so it serves the clinic's processes and in-process
tests alike. It records every request and answers what a test scripted, by default the
provider's own success reply."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass(frozen=True)
class ProviderRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    # When it arrived (time.monotonic), to check the pace of sends.
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    @property
    def recipient(self) -> str | None:
        """Who the provider was asked to send to, whatever the provider."""
        if self.method == "GET":
            return None  # a read (of a file), not a send
        if self.path.endswith("Messages.json"):
            return self.form.get("To")
        body = self.json
        if "chat_id" in body:
            return str(body["chat_id"])
        recipient = body.get("recipient")
        return recipient.get("id") if isinstance(recipient, dict) else body.get("to", recipient)

    @property
    def text(self) -> str:
        """The text the provider was asked to send, whatever the provider."""
        if self.method == "GET":
            return ""
        if self.path.endswith("Messages.json"):
            return self.form.get("Body", "")
        body = self.json
        if "text" in body and isinstance(body["text"], str):
            return body["text"]  # Telegram
        if isinstance(body.get("message"), dict):
            return body["message"].get("text", "")  # Messenger, Instagram
        if body.get("type") == "text":
            return body["text"]["body"]
        if body.get("type") == "interactive":
            return body["interactive"]["body"]["text"]
        return ""


@dataclass
class Scripted:
    path_contains: str
    status: int
    body: Any
    times: int
    after: int = 0


@dataclass
class FakeProvider:
    host: str = "127.0.0.1"
    requests: list[ProviderRequest] = field(default_factory=list)
    _scripted: list[Scripted] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _before_answer: Callable[[ProviderRequest, Any], Awaitable[None]] | None = None
    # Files it serves (path → bytes and Content-Type), as the providers' media servers do.
    _files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, 0)
            self._loop.run_until_complete(site.start())
            self.port = self._runner.addresses[0][1]
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-provider", daemon=True)
        self._thread.start()
        started.wait(10)

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._runner.cleanup()
            self._loop.stop()

        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(shutdown()))
        self._thread.join(10)

    def respond(
        self, path_contains: str, status: int, body: Any, *, times: int = 1, after: int = 0
    ) -> None:
        """The next `times` requests whose path contains `path_contains` get this answer,
        once `after` of them got the usual one."""
        with self._lock:
            self._scripted.append(Scripted(path_contains, status, body, times, after))

    def serve_file(self, path: str, content: bytes, content_type: str) -> str:
        """Serve `content` at `path` (a media server's file); its URL."""
        with self._lock:
            self._files[path] = (content, content_type)
        return f"{self.url}{path}"

    def before_answer(self, hook: Callable[[ProviderRequest, Any], Awaitable[None]]) -> None:
        """Await `hook(request, answer body)` (on the fake's own loop) before answering each
        request: e.g. a status callback that reaches the clinic before the send's answer."""
        self._before_answer = hook

    def reset(self) -> None:
        """Forget scripted answers, recorded requests and the `before_answer` hook."""
        with self._lock:
            self._scripted.clear()
            self.requests.clear()
            self._files.clear()
            self._before_answer = None

    def sent(self, predicate: Callable[[ProviderRequest], bool] = lambda _r: True) -> list:
        with self._lock:
            return [r for r in self.requests if predicate(r)]

    def sent_to(self, recipient: str) -> list[ProviderRequest]:
        return self.sent(lambda r: r.recipient == recipient)

    async def wait_for(
        self,
        predicate: Callable[[ProviderRequest], bool],
        count: int = 1,
        timeout: float = 30,
    ) -> list[ProviderRequest]:
        """The first `count` recorded requests that match, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.sent(predicate)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} matching provider requests, got {found}")
            await asyncio.sleep(0.05)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        recorded = ProviderRequest(request.method, request.path, dict(request.headers), body)
        with self._lock:
            self.requests.append(recorded)
            served = self._files.get(request.path)
            if served is not None:
                return web.Response(body=served[0], content_type=served[1])
            scripted = next(
                (s for s in self._scripted if s.path_contains in request.path and s.times > 0),
                None,
            )
            if scripted is not None and scripted.after > 0:
                scripted.after -= 1
                scripted = None
            elif scripted is not None:
                scripted.times -= 1
            number = next(self._ids)
        if scripted is not None:
            status, answer = scripted.status, scripted.body
        else:
            status, answer = self._success(recorded, number)
        if self._before_answer is not None:
            await self._before_answer(recorded, answer)
        return web.json_response(answer, status=status)

    @staticmethod
    def _success(request: ProviderRequest, n: int) -> tuple[int, Any]:
        if request.method == "GET":  # a file nobody serves here
            return 404, {"error": {"message": "Unsupported get request", "code": 100}}
        if request.path.endswith("Messages.json"):  # Twilio
            return 201, {"sid": f"SM{n:032d}", "status": "queued"}
        if "/bot" in request.path:  # Telegram
            if request.path.endswith("/sendMessage"):
                chat = request.json["chat_id"]
                chat_info = {"id": chat, "type": "private"}  # as Telegram answers
                result = {"message_id": 1000 + n, "date": int(time.time()), "chat": chat_info}
                return 200, {"ok": True, "result": result}
            return 200, {"ok": True, "result": True}
        if request.path.endswith("/me/messages"):  # Messenger, Instagram
            body = request.json
            return 200, {"recipient_id": body["recipient"]["id"], "message_id": f"m_fake{n}"}
        to = request.json.get("to") or request.json.get("recipient")  # WhatsApp Cloud
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": f"wamid.fake{n}", "message_status": "accepted"}],
        }
