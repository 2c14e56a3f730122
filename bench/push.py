"""Live-push latency: a patient message arriving at the clinic → the attendant's browser
WebSocket receiving it, across web replicas and within one process.

Starts the whole clinic from the Procfile on free ports (as the integration tests do), with
WhatsApp Cloud pointed at the local fake provider the channel tests use, twice:

- production mode: PostgreSQL + Redis (`REDIS_URL`, default the local test server) and a
  second web process beside the Procfile's; messages arrive on one web replica while the
  attendant's socket is on the other, so every push crosses Redis;
- the embedded default: SQLite, the one web process.

Two patients are handed off to an attendant listening on the staff WebSocket; then each sends
messages one at a time, timed from the moment they leave the patient until the staff socket
delivers them:

- WhatsApp: a signed provider webhook (the recorded Cloud API payload, `X-Hub-Signature-256`)
  POSTed to `/webhooks/whatsapp/webhook`, as Meta delivers a patient's message;
- the site widget: a frame on the patient's widget WebSocket.

    .venv/bin/python bench/push.py [--messages 300]

Prints, across replicas, `push_p50_ms` and `push_p99_ms` for the webhook (goal: p99 ≤ 100 ms)
and `widget_push_p50_ms` / `widget_push_p99_ms` for the widget; then the same figures within
one process, prefixed `embedded_`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import redis

from tests.channels.fake_provider import FakeProvider
from tests.channels.webhooks import channel_env, signed, text_message, webhook_path
from tests.clients import StaffClient, WidgetClient
from tests.clinic import (
    STAFF_PASSWORD,
    RunningClinic,
    answers_200,
    free_port,
    start_logged,
    stop_group,
)
from tests.databases import TEST_REDIS_URL, PostgresDatabases, postgres_available

WARM_UP = 10
PAUSE_SECONDS = 0.02
HANDOFF = "quero falar com um atendente"
PATIENT_PHONE = "5511987650001"  # WhatsApp id of the benchmark's patient
REDIS_URL = os.environ.get("REDIS_URL", TEST_REDIS_URL)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def _samples(
    attendant: StaffClient, send: Callable[[str], Awaitable[object]], messages: int
) -> list[float]:
    """Milliseconds from a message leaving the patient until the attendant's socket has it.
    `send(text)` prepares the message (for a webhook, the provider's signature) before the
    clock starts; awaiting what it returns sends it."""
    samples = []
    for n in range(WARM_UP + messages):
        marker = f"bench {uuid.uuid4().hex}"
        message = send(marker)
        started = time.perf_counter()
        sending = asyncio.ensure_future(message)
        await attendant.expect_event(
            lambda e, marker=marker: e["type"] == "message" and e["message"]["text"] == marker,
            timeout=10,
        )
        elapsed = (time.perf_counter() - started) * 1000
        await sending
        if n >= WARM_UP:
            samples.append(elapsed)
        await asyncio.sleep(PAUSE_SECONDS)
    return samples


async def measure_widget(arrival_url: str, attendant: StaffClient, messages: int) -> list:
    patient = WidgetClient(arrival_url.replace("http://", "ws://") + "/webhooks/webchat/ws")
    try:
        await patient.connect()
        await patient.say(HANDOFF)
        await patient.next_reply("system", timeout=60)  # "Ana entrou na conversa"

        def send(text: str) -> Awaitable[None]:
            return patient.send({"type": "message", "id": uuid.uuid4().hex, "text": text})

        return await _samples(attendant, send, messages)
    finally:
        await patient.close()


async def measure_webhook(
    arrival_url: str, attendant: StaffClient, provider: FakeProvider, messages: int
) -> list:
    url = f"{arrival_url}{webhook_path('whatsapp')}"
    # One keep-alive connection, as a provider's delivery pipeline would hold.
    async with aiohttp.ClientSession() as http:

        async def post(body: bytes, headers: dict[str, str]) -> None:
            async with http.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"webhook answered {response.status}")

        await post(*signed("whatsapp", text_message("whatsapp", PATIENT_PHONE, HANDOFF)))
        await provider.wait_for(
            lambda r: r.recipient == PATIENT_PHONE and "entrou na conversa" in r.text, timeout=60
        )

        def send(text: str) -> Awaitable[None]:
            return post(*signed("whatsapp", text_message("whatsapp", PATIENT_PHONE, text)))

        return await _samples(attendant, send, messages)


async def measure(
    clinic: RunningClinic, provider: FakeProvider, messages: int, staff_url: str
) -> tuple[list[float], list[float]]:
    """Messages arrive on the Procfile's web process; the attendant is on `staff_url`."""
    attendant = StaffClient(staff_url)
    try:
        await attendant.login(clinic.login_for("ana@").email, STAFF_PASSWORD)
        await attendant.go_online()
        await attendant.listen()
        arrival_url = clinic.settings.web_url
        webhook = await measure_webhook(arrival_url, attendant, provider, messages)
        widget = await measure_widget(arrival_url, attendant, messages)
        return webhook, widget
    finally:
        await attendant.close()


def report(prefix: str, samples: list[float]) -> None:
    print(f"{prefix}messages: {len(samples)}")
    print(f"{prefix}push_p50_ms: {percentile(samples, 50):.0f}")
    print(f"{prefix}push_p90_ms: {percentile(samples, 90):.0f}")
    print(f"{prefix}push_p99_ms: {percentile(samples, 99):.0f}")
    print(f"{prefix}push_max_ms: {max(samples):.0f}")


def whatsapp_env(provider: FakeProvider) -> dict[str, str]:
    """WhatsApp only: the other channels' settings (mail servers, pollers) stay off."""
    return {
        name: value
        for name, value in channel_env(provider.url, "", "").items()
        if name.startswith(("WHATSAPP_", "META_"))
    }


def across_replicas(provider: FakeProvider, messages: int) -> tuple[list[float], list[float]]:
    if (reason := postgres_available()) is not None:
        raise SystemExit(f"production mode needs PostgreSQL: {reason}")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"production mode needs Redis at {REDIS_URL}: {exc}") from exc
    folder = Path(tempfile.mkdtemp(prefix="bench-push-replicas-"))
    databases = PostgresDatabases()
    databases.prepare_template()
    env = {**whatsapp_env(provider), "REDIS_URL": REDIS_URL}
    clinic = RunningClinic.prepare(folder, databases.create(), env)
    second_url = f"http://127.0.0.1:{free_port()}"
    second: subprocess.Popen[bytes] | None = None
    clinic.start()
    try:
        second = start_logged(
            [sys.executable, "-m", "processes.web"],
            {**os.environ, **clinic.settings.child_env(), "WEB_URL": second_url},
            folder / "web-2.log",
        )
        deadline = time.monotonic() + 60
        while not answers_200(f"{second_url}/healthz"):
            if second.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the second web replica did not start: see {folder}")
            time.sleep(0.2)
        return asyncio.run(measure(clinic, provider, messages, staff_url=second_url))
    finally:
        stop_group(second)
        clinic.stop()
        databases.drop_all()


def embedded(provider: FakeProvider, messages: int) -> tuple[list[float], list[float]]:
    folder = Path(tempfile.mkdtemp(prefix="bench-push-"))
    database_url = f"sqlite:///{folder / 'clinic.db'}"
    clinic = RunningClinic.prepare(folder, database_url, whatsapp_env(provider))
    clinic.start()
    try:
        return asyncio.run(measure(clinic, provider, messages, staff_url=clinic.settings.web_url))
    finally:
        clinic.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    provider = FakeProvider()
    provider.start()
    try:
        replicas = across_replicas(provider, args.messages)
        provider.reset()
        single = embedded(provider, args.messages)
    finally:
        provider.stop()
    report("", replicas[0])
    report("widget_", replicas[1])
    report("embedded_", single[0])
    report("embedded_widget_", single[1])


if __name__ == "__main__":
    main()
