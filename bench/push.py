"""Live-push latency: a patient message arriving at the clinic → the attendant's browser
WebSocket receiving it.

Starts the whole clinic from the Procfile on free ports (as the integration tests do), hands a
widget visitor off to an attendant listening on the staff WebSocket, then sends messages one
at a time and times each from the moment it leaves the patient's socket until the staff
socket delivers it. The inbound edge is the site widget's WebSocket (the channel connector
every installation has); provider webhooks share the same record → publish → hub path.

    .venv/bin/python -m bench.push [--messages 300]

Prints `push_p50_ms: N` and `push_p99_ms: N` (goal: p99 ≤ 250 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
import uuid
from pathlib import Path

from tests.clients import StaffClient, WidgetClient
from tests.clinic import STAFF_PASSWORD, RunningClinic

WARM_UP = 10
PAUSE_SECONDS = 0.02


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def measure(clinic: RunningClinic, messages: int) -> list[float]:
    attendant = StaffClient(clinic.settings.web_url)
    patient = WidgetClient(clinic.widget_socket_url)
    try:
        await attendant.login(clinic.login_for("ana@").email, STAFF_PASSWORD)
        await attendant.go_online()
        await attendant.listen()
        await patient.connect()
        await patient.say("quero falar com um atendente")
        await patient.next_reply("system", timeout=60)  # "Ana entrou na conversa"
        samples = []
        for n in range(WARM_UP + messages):
            marker = f"bench {uuid.uuid4().hex}"
            started = time.perf_counter()
            await patient.send({"type": "message", "id": uuid.uuid4().hex, "text": marker})
            await attendant.expect_event(
                lambda e, marker=marker: e["type"] == "message" and e["message"]["text"] == marker,
                timeout=10,
            )
            if n >= WARM_UP:
                samples.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(PAUSE_SECONDS)
        return samples
    finally:
        await patient.close()
        await attendant.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-push-"))
    clinic = RunningClinic.prepare(folder, f"sqlite:///{folder / 'clinic.db'}")
    clinic.start()
    try:
        samples = asyncio.run(measure(clinic, args.messages))
    finally:
        clinic.stop()
    print(f"messages: {len(samples)}")
    print(f"push_p50_ms: {percentile(samples, 50):.0f}")
    print(f"push_p90_ms: {percentile(samples, 90):.0f}")
    print(f"push_p99_ms: {percentile(samples, 99):.0f}")
    print(f"push_max_ms: {max(samples):.0f}")


if __name__ == "__main__":
    main()
