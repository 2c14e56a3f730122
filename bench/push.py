"""Live-push latency: a patient message arriving at the clinic → the attendant's browser
WebSocket receiving it.

Starts the whole clinic from the Procfile on free ports (as the integration tests do), with
WhatsApp Cloud pointed at the local fake provider the channel tests use. Two patients are
handed off to an attendant listening on the staff WebSocket; then each sends messages one at a
time, timed from the moment they leave the patient until the staff socket delivers them:

- WhatsApp: a signed provider webhook (the recorded Cloud API payload, `X-Hub-Signature-256`)
  POSTed to `/webhooks/whatsapp/webhook`, as Meta delivers a patient's message;
- the site widget: a frame on the patient's widget WebSocket.

    .venv/bin/python bench/push.py [--messages 300]

Prints `push_p50_ms: N` and `push_p99_ms: N` for the webhook (goal: p99 ≤ 250 ms), then
`widget_push_p50_ms: N` and `widget_push_p99_ms: N` for the widget.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from tests.channels.fake_provider import FakeProvider
from tests.channels.webhooks import channel_env, signed, text_message, webhook_path
from tests.clients import StaffClient, WidgetClient
from tests.clinic import STAFF_PASSWORD, RunningClinic

WARM_UP = 10
PAUSE_SECONDS = 0.02
HANDOFF = "quero falar com um atendente"
PATIENT_PHONE = "5511987650001"  # WhatsApp id of the benchmark's patient


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


async def measure_widget(clinic: RunningClinic, attendant: StaffClient, messages: int) -> list:
    patient = WidgetClient(clinic.widget_socket_url)
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
    clinic: RunningClinic, attendant: StaffClient, provider: FakeProvider, messages: int
) -> list:
    url = f"{clinic.settings.web_url}{webhook_path('whatsapp')}"
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
    clinic: RunningClinic, provider: FakeProvider, messages: int
) -> tuple[list[float], list[float]]:
    attendant = StaffClient(clinic.settings.web_url)
    try:
        await attendant.login(clinic.login_for("ana@").email, STAFF_PASSWORD)
        await attendant.go_online()
        await attendant.listen()
        webhook = await measure_webhook(clinic, attendant, provider, messages)
        widget = await measure_widget(clinic, attendant, messages)
        return webhook, widget
    finally:
        await attendant.close()


def report(prefix: str, samples: list[float]) -> None:
    print(f"{prefix}messages: {len(samples)}")
    print(f"{prefix}push_p50_ms: {percentile(samples, 50):.0f}")
    print(f"{prefix}push_p90_ms: {percentile(samples, 90):.0f}")
    print(f"{prefix}push_p99_ms: {percentile(samples, 99):.0f}")
    print(f"{prefix}push_max_ms: {max(samples):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-push-"))
    provider = FakeProvider()
    provider.start()
    # WhatsApp only: the other channels' settings (mail servers, pollers) stay off.
    whatsapp = {
        name: value
        for name, value in channel_env(provider.url, "", "").items()
        if name.startswith(("WHATSAPP_", "META_"))
    }
    clinic = RunningClinic.prepare(folder, f"sqlite:///{folder / 'clinic.db'}", whatsapp)
    clinic.start()
    try:
        webhook, widget = asyncio.run(measure(clinic, provider, args.messages))
    finally:
        clinic.stop()
        provider.stop()
    report("", webhook)
    report("widget_", widget)


if __name__ == "__main__":
    main()
