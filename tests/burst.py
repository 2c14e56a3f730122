"""A burst of new WhatsApp conversations against a running clinic, for `bench/burst.py` and
the integration test of the embedded default (`tests/integration/test_burst.py`).

Each new patient sends a greeting and, as soon as it is acknowledged, a question; `clients`
of them post at once. Both messages wait for the bot while the others arrive, so the clinic
must acknowledge at the ingest rate (not at the bot's) and still answer each patient's two
messages in the order they were sent: the greeting's answer first."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.channels.fake_provider import FakeProvider, ProviderRequest
from tests.channels.webhooks import signed, text_message, webhook_path

GREETING, QUESTION = "oi", "qual o endereço da clínica?"
# What only the answer to the greeting says (utter_saudacao in domain.yml).
GREETING_ANSWER = b"assistente virtual"
# What a database failure looks like in the clinic's log.
DB_ERROR = re.compile(r"OperationalError|database is locked|DBAPIError")
_runs = itertools.count(int(time.time()) % 10_000 * 100)


@dataclass(frozen=True)
class Burst:
    patients: int
    acks_per_s: float
    refused: int  # webhooks answered with anything but 200
    answered: int  # patients who got both answers
    answered_in_order: int  # ... the greeting's first
    db_errors: int  # lines of the clinic's log saying the database failed


def _replies(provider: FakeProvider, sender: str) -> list[ProviderRequest]:
    """What the clinic sent this WhatsApp id, in order (messages, not read receipts)."""
    return [
        r for r in provider.sent_to(sender) if b'"text"' in r.body or b'"interactive"' in r.body
    ]


async def _patient(http: aiohttp.ClientSession, url: str, sender: str, refused: list[str]) -> None:
    for text in (GREETING, QUESTION):
        body, headers = signed("whatsapp", text_message("whatsapp", sender, text))
        async with http.post(url, data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                refused.append(sender)


async def burst(
    web_url: str,
    provider: FakeProvider,
    log: Path,
    *,
    patients: int = 50,
    clients: int = 16,
    answer_within: float = 240.0,
) -> Burst:
    """Post the burst, wait (up to `answer_within` seconds) for every answer, and say how it
    went."""
    logged_before = _size(log)
    run = next(_runs)
    senders = [f"55119{run:06d}{n:03d}" for n in range(patients)]
    url = f"{web_url}{webhook_path('whatsapp')}"
    refused: list[str] = []
    pending = asyncio.Queue[str]()
    for sender in senders:
        pending.put_nowait(sender)

    async def client(http: aiohttp.ClientSession) -> None:
        while not pending.empty():
            await _patient(http, url, pending.get_nowait(), refused)

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        acks_per_s = 2 * patients / (time.perf_counter() - started)
    deadline = time.monotonic() + answer_within
    while time.monotonic() < deadline:
        if all(len(_replies(provider, s)) >= 2 for s in senders):
            break
        await asyncio.sleep(0.5)
    answers = [_replies(provider, s) for s in senders]
    answered = [a for a in answers if len(a) == 2]
    in_order = [
        a for a in answered if GREETING_ANSWER in a[0].body and GREETING_ANSWER not in a[1].body
    ]
    errors = _db_errors(log, logged_before)
    return Burst(patients, acks_per_s, len(refused), len(answered), len(in_order), errors)


def _size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def _db_errors(log: Path, since: int) -> int:
    """Lines of the log written after byte `since` that say the database failed."""
    with log.open("rb") as logged:
        logged.seek(since)
        return sum(1 for line in logged if DB_ERROR.search(line.decode(errors="replace")))
